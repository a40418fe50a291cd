"""Models: ``load_model(spec)`` and the ``Backbone`` interface."""

from robust.models.backbone import Backbone, as_backbone, unwrap_logits
from robust.models.checkpoint import save_weights
from robust.models.specs import build_architecture, load_model, parse_input_size, parse_spec, with_input_size

__all__ = ["Backbone", "as_backbone", "build_architecture", "load_model", "parse_input_size", "parse_spec",
           "save_weights", "unwrap_logits", "with_input_size"]
