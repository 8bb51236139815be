"""nnU-Net trainer classes of this project.

nnU-Net finds trainers by class name inside its own package, or in the folders listed in the
``nnUNet_extTrainer`` environment variable (nnU-Net >= 2.7). :func:`spine_lib.segmentation.environment.nnunet_env`
puts this folder there, so ``nnUNetv2_train -tr nnUNetTrainerShort`` and the predictor of a checkpoint written by
it find the class. Each module here must stay importable on its own (nnU-Net imports it as a top-level module).
"""
