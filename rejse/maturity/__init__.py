"""The data-maturity assessment of the "Brug Kundedata" workbook (Pedersen & Ritter 2021):
the scoring rules (`model`), the customer-data answers rejse's data suggests (`prefill`), the
texts in Danish and English (`texts`) and stored assessments with their charts (`service`)."""
