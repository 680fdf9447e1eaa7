"""The metadata role: a metadata proxy in every ``qdhcp-``/``qrouter-`` namespace instances reach it through."""
