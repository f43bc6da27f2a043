"""Text modality (customer-service tickets): the simulator, the cleaning rules and the parts of
the text model."""
