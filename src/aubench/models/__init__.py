"""Backbones, shared blocks and one module per method. Importing the package registers every method
module below with `registry` (a method added here is known everywhere)."""
from aubench.models import baseline, ciu, ciu_teachers, lac, mcsfau, mcsfau_pretrain, mdhr, stf  # noqa: F401  (registers the methods)
