from gesim.rewards.base import RewardClient, RewardResult

__all__ = ["RewardClient", "RewardResult"]
