"""Sales side of lead scoring: reps, assignment (round robin / territory), leads and their SLA,
outcomes, the "next customer to contact" list and follow-up figures. Framework-free."""
