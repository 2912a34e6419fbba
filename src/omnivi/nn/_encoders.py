"""Encoders: one branch per modality, and a fusion of the branches into one latent."""

from __future__ import annotations

import torch
from scvi.nn import FCLayers
from torch import nn

from ._rows import layers_on_rows
from ._sparse import bag_inputs, binary_columns, stored_density

#: Stored share of a sparse minibatch below which the ATAC projection sums embedding rows over
#: each cell's accessible regions; above it, the dense 0/1 block is multiplied by the weights.
#: On two CPU cores (``benchmarks/atac_projection.py``: 256 cells; 600, 5,000 and 25,734
#: regions, forward and backward) the two cost the same near 2%; at 0.4% (``mop_rna_atac``'s
#: peaks) the sum was 2.2-3.0x faster, at 15% (``bmmc_multiome_small``'s, or peaks kept for
#: being open in many cells) the product 3.4-4.2x.
DENSE_PROJECTION_DENSITY = 0.02


class ModalityEncoder(nn.Module):
    """Encode one modality into a hidden representation.

    A stack of :class:`scvi.nn.FCLayers`. Batch and categorical covariates are injected as
    one-hot columns of the first layer, so that scArches surgery can later train only those
    columns for new batches. For wide, sparse binary input (ATAC) ``sparse_input=True`` first
    projects the input's presence/absence pattern with a bias-free linear map; its input may
    then be a sparse CSR tensor. A sparse minibatch storing under
    :data:`DENSE_PROJECTION_DENSITY` of its entries is projected as a sum of weight rows over
    each cell's accessible regions (cost grows with the non-zero entries, not the width, and
    nothing is densified); a denser or dense one as a product with its dense 0/1 block.

    Parameters
    ----------
    n_input
        Number of features of the modality.
    n_output
        Width of the hidden representation.
    n_cat_list
        Number of categories of each categorical covariate (batch first).
    n_cont
        Number of continuous covariates.
    n_layers
        Number of fully connected layers.
    dropout_rate
        Dropout after each layer.
    use_batch_norm, use_layer_norm
        Normalisation after each layer.
    sparse_input
        Read the input as presence/absence (non-zero means present) and project it sparsely.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_cat_list: list[int] | None = None,
        n_cont: int = 0,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
        sparse_input: bool = False,
    ):
        super().__init__()
        self.n_output = n_output
        self.projection = None
        if sparse_input:
            self.projection = nn.EmbeddingBag(n_input, n_output, mode="sum")
            bound = n_input**-0.5
            nn.init.uniform_(self.projection.weight, -bound, bound)
        self.encoder = FCLayers(
            n_in=n_output if sparse_input else n_input,
            n_out=n_output,
            n_cat_list=n_cat_list,
            n_cont=n_cont,
            n_layers=n_layers,
            n_hidden=n_output,
            dropout_rate=dropout_rate,
            use_batch_norm=use_batch_norm,
            use_layer_norm=use_layer_norm,
            inject_covariates=False,
        )

    def forward(
        self,
        x: torch.Tensor,
        *cat_list: torch.Tensor,
        cont: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the hidden representation of ``x`` (cells x features).

        ``rows`` (a boolean per cell) encodes only the cells that have the modality; the
        others (zero-padded rows of mosaic data) get zeros and take no part in the
        batch-norm statistics, so a cell's representation does not depend on how many
        cells of its minibatch lack the modality.
        """
        if self.projection is not None:  # dense or sparse input -> dense, n_output wide
            x = self._project(x)
        return layers_on_rows(self.encoder, self.n_output, x, cat_list, cont, rows)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of the projection's weight rows over the regions each cell has."""
        if stored_density(x) < DENSE_PROJECTION_DENSITY:
            return self.project_by_rows(x)
        return self.project_densely(x)

    def project_by_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` as an embedding bag over each cell's accessible regions."""
        return self.projection(*bag_inputs(x))

    def project_densely(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` as its dense 0/1 block times the weights."""
        return binary_columns(x) @ self.projection.weight


class FusionEncoder(nn.Module):
    """Fuse the hidden representations of the modalities into one latent per cell.

    The modality branches are concatenated (a branch a cell lacks is zeroed by the mask), then
    passed through a joint bottleneck: the two-branch design of the classic CITE-seq
    autoencoder, extended to any number of modalities.

    Parameters
    ----------
    n_inputs
        Width of each modality's hidden representation, in fusion order.
    n_latent
        Dimension of the joint latent.
    n_hidden
        Width of the joint hidden layer.
    variational
        If ``True`` also output a variance (VAE); otherwise only the mean is produced.
    dropout_rate
        Dropout of the joint hidden layer.
    use_batch_norm, use_layer_norm
        Normalisation of the joint hidden layer.
    var_eps
        Minimum variance, for numerical stability.
    """

    def __init__(
        self,
        n_inputs: list[int],
        n_latent: int,
        n_hidden: int = 128,
        variational: bool = True,
        dropout_rate: float = 0.1,
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
        var_eps: float = 1e-4,
    ):
        super().__init__()
        self.n_inputs = list(n_inputs)
        self.var_eps = var_eps
        self.encoder = FCLayers(
            n_in=sum(self.n_inputs),
            n_out=n_hidden,
            n_layers=1,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
            use_batch_norm=use_batch_norm,
            use_layer_norm=use_layer_norm,
        )
        self.mean_encoder = nn.Linear(n_hidden, n_latent)
        self.var_encoder = nn.Linear(n_hidden, n_latent) if variational else None

    def forward(
        self, hidden: list[torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fuse ``hidden`` (one tensor per modality) under ``mask`` (cells x modalities).

        Returns
        -------
        The latent mean and, for a variational encoder, the latent variance (else ``None``).
        """
        masked = [h * mask[:, i : i + 1] for i, h in enumerate(hidden)]
        joint = self.encoder(torch.cat(masked, dim=-1))
        mean = self.mean_encoder(joint)
        if self.var_encoder is None:
            return mean, None
        return mean, torch.exp(self.var_encoder(joint)) + self.var_eps
