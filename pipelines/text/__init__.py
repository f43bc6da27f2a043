"""Text modality: the customer-service ticket simulator and the text cleaning rules."""
