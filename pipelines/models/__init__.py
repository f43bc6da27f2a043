"""Model architectures built from `conf/model`."""
