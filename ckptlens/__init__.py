"""ckptlens: lawful lenses between Hugging Face checkpoints and a native layout."""

from ckptlens.lenses import MISSING, DefinitionError, LensError, SourceError, ViewError

__version__ = "0.1.0"
__all__ = ["MISSING", "DefinitionError", "LensError", "SourceError", "ViewError", "__version__"]
