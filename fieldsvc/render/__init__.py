"""Shared drawing leaves (core layer): QR codes and the CJK font, used by device provisioning,
certificates and labels, grading reports and the console. They import nothing of ours but errors."""
