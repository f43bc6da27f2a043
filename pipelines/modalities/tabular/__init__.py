"""Tables: the default modality (finance_risk, german_credit, your own CSV or Parquet)."""

# what one row of this modality is called in reports
ROWS = "rows"
