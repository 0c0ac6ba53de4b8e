"""Operations: health, metrics, logs, the OpenAPI document and its viewer, backups."""
