"""Segmentation training with nnU-Net v2: environment, plan and preprocess, training, short CPU trainer.

Importing this package is light; nnunetv2 and torch are imported by the functions that run nnU-Net.
"""
