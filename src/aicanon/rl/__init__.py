"""Deep reinforcement learning on the Gymnasium API: environments (:mod:`.envs`), normalisation wrappers (:mod:`.wrappers`), the
replay buffer (:mod:`.buffers`), rollouts and advantage estimation (:mod:`.rollout`), and one
evaluation protocol (:mod:`.evaluation`) that every agent shares."""
