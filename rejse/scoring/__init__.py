"""Lead scoring: the versioned scoring model, score arithmetic with lazy decay, lifecycle stages
and the event processor's scoring subscriber. Framework-free."""
