"""pytest plugin (entry point `torchscope`): placeholder module, filled by the regression-gate work."""
