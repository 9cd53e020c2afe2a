"""Small structure sets that fntk generates itself (demo pool, benchmark data)."""

from fntk.data.adsorbates import make_adsorbate_structures

__all__ = ["make_adsorbate_structures"]
