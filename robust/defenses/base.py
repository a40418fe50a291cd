"""The base of every defence: a ``Backbone`` that wraps an undefended one."""

from __future__ import annotations

import torch

from robust.checks import InputError, InputTypeError
from robust.models.backbone import Backbone


class Defended(Backbone):
    """A model behind a defence: a ``Backbone`` (so attacks, evaluations, boards and ``robust.testing`` take it)
    around an undefended one, whose network, preprocessing and description it shares (not copies). Its name is the
    base's with ``+NAME``; ``undefended`` is the base (Grad-CAM and non-adaptive attacks read it). A subclass sets
    ``name`` and ``description``, registers with ``@robust.registry.register_defense`` and overrides ``logits``.

    Args:
        model: the model to defend.

    Raises:
        TypeError: a model that is not a ``Backbone``.
        InputError: a model that is already defended.

    Examples:
        >>> from robust.defenses.base import Defended
        >>> from robust.models import load_model
        >>> class Identity(Defended):
        ...     name = "identity"
        >>> defended = Identity(load_model("zoo:digits-m/resnet", "cpu"))
        >>> defended.name, defended.undefended.name, defended.training
        ('zoo:digits-m/resnet+identity', 'zoo:digits-m/resnet', False)
    """

    name = "defence"

    def __init__(self, model: Backbone):
        if not isinstance(model, Backbone):
            raise InputTypeError(f"model must be a robust Backbone (load_model), got {type(model).__name__}.")
        if model.undefended is not model:
            raise InputError(f"model {model.name!r} is already defended; expected an undefended model.")
        super().__init__(model.net, name=f"{model.name}+{type(self).name}", input_size=model.input_size,
                         mean=model.mean, std=model.std, class_names=model.class_names,
                         num_classes=model.num_classes, family=model.family, cam_layer=model.cam_layer_name,
                         preprocess=model.preprocess)
        del self._modules["net"]  # the network is the base's (``net`` reads it there): registered once, under
        self.base = model  # ``base``, so the repr, state_dict and parameters list it once and .to() moves both
        self.train(model.training)  # the mode its base is in (a new module starts in training mode)

    @property
    def net(self) -> torch.nn.Module:
        """The base's network, shared (not a copy)."""
        return self.base.net

    @property
    def undefended(self) -> Backbone:
        return self.base


__all__ = ["Defended"]
