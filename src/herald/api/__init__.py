"""The HTTP edge: Backstage-shaped routes, wire formats and error bodies."""
