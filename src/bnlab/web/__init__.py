"""The interactive explorer: a local page and a JSON API, computed by bnlab's own code."""
