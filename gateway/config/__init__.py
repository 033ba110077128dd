"""Configuration: file location, JSON5 parsing, validation, secrets."""
