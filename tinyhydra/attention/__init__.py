"""``tinyhydra.attention``: the attention operations as fused Functions with a derived backward,
each with a quadratic twin that spells out the same maths.

Read in this order:

1. :mod:`.masking`: causal and padding masks, and the argument checks every op shares;
2. :mod:`.softmax_attention`: softmax(Q K^T / sqrt(d)) V, O(L^2 D);
3. :mod:`.scan`: prefix sums, the primitive that makes causal linear attention O(L D);
4. :mod:`.linear_attention`: kernelised attention with the elu+1 feature map;
5. :mod:`.hydra`: Hydra attention, one head per feature with the cosine feature map
   (and H heads of D/H features, Hydra being H = D);
6. :mod:`.decayed_hydra`: Hydra whose context decays with distance, still O(L D);
7. :mod:`.conv`: the depthwise causal convolution some variants add;
8. :mod:`.reference`: the quadratic twins the tests hold every fused op to (1e-10).
"""
