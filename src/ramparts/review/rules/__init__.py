"""Rule catalogue: one YAML file per risk (R1..R6) with each check's severity, fix and doc link."""
