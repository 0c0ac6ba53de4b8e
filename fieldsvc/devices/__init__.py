"""Field devices: registration, assignment, provisioning QR, revocation."""
