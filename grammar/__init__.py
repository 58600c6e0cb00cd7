"""The fusiondsl grammar, shipped as package data (``fusion.lark``)."""
