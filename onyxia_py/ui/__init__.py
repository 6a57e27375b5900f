"""Server-rendered HTML pages (an edge: may import every layer below it)."""
