"""Event producers (synthetic generator, file replay) and the forecast publisher."""
