"""File formats -> (ModelConfig, state dict in our names).

Our parameter names (see chatapp/model/transformer.py), for layer i:
  tok_embeddings.weight                     (vocab, dim)
  pos_embeddings.weight                     (max_seq_len, dim)        gpt2 only
  layers.i.attn_norm.weight / .bias         (dim,)                    bias: layernorm only
  layers.i.attn.q_proj.weight / .bias       (n_heads*head_dim, dim)   bias: qkv_bias
  layers.i.attn.k_proj.weight / .bias       (n_kv_heads*head_dim, dim)
  layers.i.attn.v_proj.weight / .bias       (n_kv_heads*head_dim, dim)
  layers.i.attn.o_proj.weight / .bias       (dim, n_heads*head_dim)   bias: o_bias
  layers.i.mlp_norm.weight / .bias          (dim,)
  layers.i.mlp.gate_proj.weight / .bias     (intermediate, dim)       swiglu only; bias: mlp_bias
  layers.i.mlp.up_proj.weight / .bias       (intermediate, dim)
  layers.i.mlp.down_proj.weight / .bias     (dim, intermediate)
  norm.weight / .bias                       (dim,)
  lm_head.weight                            (vocab, dim)              absent when tie_embeddings
All nn.Linear weights are (out_features, in_features), q/k rows in Hugging Face's
"rotate half" RoPE layout.
"""
