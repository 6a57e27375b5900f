"""Catalogues: Onyxia-style Helm repositories, launch forms and server-side values."""
