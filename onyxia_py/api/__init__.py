"""JSON API routes (an edge: may import every layer below it)."""
