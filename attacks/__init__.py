"""Attack and evaluation presets (the TOML files here), installed as the package data ``robust.attack_presets``
(pyproject maps this folder to that package: no link, so a Windows checkout or a wheel built anywhere has them)."""
