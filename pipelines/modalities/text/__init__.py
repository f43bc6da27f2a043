"""Text modality (customer-service tickets): the simulator, the cleaning rules and the parts of
the text model."""

# the content and label columns ingest writes (every later stage reads these)
COLUMNS = ("text", "label")
# what one row of this modality is called in reports
ROWS = "texts"
# what the latency figures of its evaluate report take as input
LATENCY_INPUTS = (
    "token ids in (tokenising is timed as tokenize_only in outputs/latency/"
    "latency.json); TF-IDF's includes its vectorizer"
)
