"""What users take away from a pretrained model: embeddings, reconstructions, linear probes.

* :mod:`~lvcg_cli.downstream.embed`        records -> frozen (D,) embeddings, pipelined and batched
* :mod:`~lvcg_cli.downstream.reconstruct`  all 12 leads from a few (model, physics, linear), scored
* :mod:`~lvcg_cli.downstream.baselines`    physics lift/project, population regression, best-lead copy
* :mod:`~lvcg_cli.downstream.probe`        the published linear-probing protocol, with baselines
* :mod:`~lvcg_cli.downstream.features`     handcrafted ECG features (a probe baseline)
* :mod:`~lvcg_cli.downstream.metrics`      Pearson r / RMSE, AUROC / AUPRC / tuned F1

Submodules import torch or scikit-learn only where they need them.
"""
