"""The sampler's offline web app (a PWA) served at ``/field/``; the app itself lives in ``offline_sync/web/``."""
