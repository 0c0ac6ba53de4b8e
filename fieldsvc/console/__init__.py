"""The county officials' console: server-rendered pages under ``/console/`` over the domain services."""
