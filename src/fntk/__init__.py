"""fntk: pick which atomic structures to label next when fine-tuning a pretrained MLIP."""

__version__ = "0.1.0"
