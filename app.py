"""Entry point: ``flask --app app run`` or ``gunicorn app:app``."""

import gc

from fieldsvc import create_app

app = create_app()
gc.freeze()  # what start-up made lives as long as the process: keep it out of every later collection
