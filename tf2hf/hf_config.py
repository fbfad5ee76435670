"""config.json for the class written: the family's translation of the TF config, checked."""

from __future__ import annotations

from tf2hf.engine.graph_config import apply_graph
from tf2hf.engine.plan import Plan
from tf2hf.errors import ConfigError
from tf2hf.output.config_check import check_output_config
from tf2hf.output.labels import label_names


def hf_config_for(plan: Plan, options: dict) -> dict:
    """config.json: the family's translation plus what every transformers config needs."""
    config = plan.family.hf_config(plan.tf_config, plan.dims, options)
    config.update(plan.target.config)
    check_output_config(config, options["config_label"])  # the values copied from the TF config, before any arithmetic with them
    apply_graph(config, plan.family, options.get("graph"))  # the training graph's heads and epsilon
    # A family may derive the head count (ELECTRA's generator, TF2's 3-D kernels); else the config's.
    heads = config.get("num_attention_heads", plan.tf_config.get("num_attention_heads"))
    if not isinstance(heads, int) or heads <= 0:
        raise ConfigError(f"{options['config_label']}: num_attention_heads is missing or not a positive integer; fix the config")
    if config["hidden_size"] % heads:
        raise ConfigError(f"{options['config_label']}: hidden_size {config['hidden_size']} is not a multiple of num_attention_heads {heads}; fix the config")
    config["num_attention_heads"] = heads
    if "num_labels" in config:
        count = int(config.pop("num_labels"))
        names = label_names(options.get("labels"), count, source=plan.source, cls=plan.target.cls, task=plan.target.task)
        labels = {str(i): name for i, name in enumerate(names)}
        config["id2label"] = labels
        config["label2id"] = {v: int(k) for k, v in labels.items()}
    elif options.get("labels"):
        raise ConfigError(f"{plan.source}: labels were given, but {plan.target.cls} has no classification head; leave them out")
    config["model_type"] = plan.family.model_type
    config["architectures"] = [plan.target.cls]
    config["dtype"] = options["dtype"]
    check_output_config(config, options["config_label"])
    return config
