"""torchscope: one table per model merging structure (params, shapes, MACs) with
measured runtime (time, memory) per module, recorded by a C++ RecordFunction
observer. See README.md."""
from ._ext import C as _C  # noqa: F401  (loads or builds the recorder first)
from .api import profile_summary
from .compat import summary
from .export import from_dict, from_json
from .weights import plot_weights, weight_stats
from .capture import ProfileError
from .report import ProfileSummary, Row

__version__ = "0.1.0"
__all__ = ["profile_summary", "summary", "from_dict", "from_json", "plot_weights", "weight_stats", "ProfileSummary", "Row", "ProfileError", "__version__"]
