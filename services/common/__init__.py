"""What both services share, so the schema, the validation and the JSON cannot drift apart."""
