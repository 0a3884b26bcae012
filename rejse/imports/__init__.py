"""`rejse import`: history in from files, through the same validation and store path as
`/v1/batch`.

- `formats`: the readers (Segment JSON lines, CSV with a column map, a Shopify orders export),
  each turning a file into messages (validated like `/v1/batch`) or ready event rows (the
  Shopify mapping), with the byte offset to read on from after each.
- `runner`: batches them (one transaction per batch), stores them idempotently by messageId,
  reports bad lines by line number and field, keeps a checkpoint so an interrupted import
  continues where it stopped, and marks every event with the import's start: the processor
  applies events older than it but starts no journey and hands no lead off for them
  (`rejse.contracts.IMPORT_SOURCE`).
"""
