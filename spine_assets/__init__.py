"""Dagster code location of Spine Vision: assets, resources, sensors and checks over spine_lib.

Loading it must stay fast: heavy libraries (torch, nnunetv2, paddle) are imported inside asset bodies only.
"""
