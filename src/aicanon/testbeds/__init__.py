"""Set-ups shared by several experiments, each with a small config of its own.

* :mod:`~aicanon.testbeds.char_lm`: a small pre-trained character-level Llama, cached (the align papers' base);
* :mod:`~aicanon.testbeds.sentiment`: a ground-truth sentiment reward, prompts, sampled completions and
  preference pairs (InstructGPT's reward model, DPO);
* :mod:`~aicanon.testbeds.digit_detection`: MNIST digits on a canvas with known boxes (DETR and the
  vision-transformer surveys);
* :mod:`~aicanon.testbeds.planetoid`: node classification on Cora/CiteSeer with GAT's and Kipf &
  Welling's stopping rules (GAT, the GNN review);
* :mod:`~aicanon.testbeds.data_fraction`: ViT's and MLP-Mixer's data-fraction protocol;
* :mod:`~aicanon.testbeds.forecasting`: the long-horizon forecasting protocol on ETT (Informer, Autoformer);
* :mod:`~aicanon.testbeds.task_streams`: permuted/rotated MNIST and split CIFAR-10 task streams (EWC, GEM);
* :mod:`~aicanon.testbeds.toy_densities`: the 2-D energy functions U1–U4 and toy samples (the flows);
* :mod:`~aicanon.testbeds.sequence_tasks`: adding, copy memory, selective copying, induction heads and
  sequential MNIST, with one training loop (TCN, Mamba);
* :mod:`~aicanon.testbeds.digit_judge`: an independent digit classifier for generated samples' fidelity
  and features (the diffusion papers);
* :mod:`~aicanon.testbeds.diffusion_training`: the denoiser training loop with EMA, timestep sampling and
  resume (the diffusion papers);
* :mod:`~aicanon.testbeds.guided_digits`: the cached class-conditional denoiser and noisy classifier
  on 8x8 digits (the guidance papers);
* :mod:`~aicanon.testbeds.arithmetic_lm`: a small Llama pre-trained on arithmetic word problems with
  and without rationales, cached (the reasoning, evaluation and RL-from-feedback papers);
* :mod:`~aicanon.testbeds.masked_lm`: a small pre-trained ALBERT/BERT-style masked LM, cached (prompt
  learning);
* :mod:`~aicanon.testbeds.procedural_shapes`: procedural meshes in ShapeNetCore's layout (ShapeNet);
* :mod:`~aicanon.testbeds.cache`: where the cached testbeds keep their trained state.

Dependencies point one way: experiments and testbeds import methods, datasets and core; a method
never imports a testbed, and a testbed never imports an experiment.
"""
