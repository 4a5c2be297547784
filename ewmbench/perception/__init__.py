"""Perception models (detector, image encoders, captioner), loaded through one weights manager."""
