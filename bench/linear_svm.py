"""scikit-learn's ``LinearSVC`` problem, solved exactly and fast: the TS protocols' linear probe.

TS (Kukleva et al., ICLR 2023) scores frozen features with ``sklearn.svm.LinearSVC(C=1.0)``: per class
(one-vs-rest, ``y`` in {+1, -1}), liblinear's L2-regularised squared-hinge problem ``L2R_L2LOSS_SVC``

    min_w  1/2 ||w||^2 + C * sum_i max(0, 1 - y_i w.x'_i)^2,     x' = [x, 1]

where the intercept is the weight of a constant feature ``intercept_scaling = 1`` and is regularised
like the other weights (liblinear's convention, which scikit-learn keeps). The problem is strongly
convex, so it has one solution whatever the solver; liblinear reaches it by coordinate descent or a
trust-region Newton method, one class at a time on one thread, and stops at ``tol = 1e-4``. On
CIFAR's 3,072-dimensional raw pixels (the raw-pixel floor) that took 7 minutes a split on 2 cores.

This module solves the same problem for all classes at once with a preconditioned truncated Newton
method (the generalised Hessian of the squared hinge, as liblinear's primal solver, Galli & Lin,
"A Study on Truncated Newton Methods for Linear Classification", IEEE TNNLS 2022):

1. Rotate to the principal basis of the training features, ``x' -> Q^T x'`` with ``X'^T X' = Q diag(lam) Q^T``
   (or, with fewer samples than features, the basis of ``X' X'^T``, where the solution must lie).
   The rotation is orthogonal, so norms, margins and hence the problem are unchanged.
2. Newton steps ``H d = -g`` with ``H = I + 2C X_A^T X_A`` over the samples ``A`` inside the margin,
   solved by conjugate gradients preconditioned with ``diag(1 + 2C lam)`` -- the Hessian with every
   sample active, exact at the start and diagonal in the rotated basis;
3. Armijo backtracking on the exact objective, per class; stop at ``||g|| <= tol * ||g_0||``.

All arithmetic is float64 in torch (threaded BLAS). Test: ``tests/test_linear_svm.py`` checks the
weights against liblinear solved to a tight tolerance and the predictions against ``LinearSVC``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Solver name the records carry (``evaluation`` descriptions and ``linear_solver``).
SOLVER = "Newton-CG in the principal basis (bench/linear_svm.py), LinearSVC's exact problem"

#: Relative gradient norm at which a class's problem counts as solved; liblinear's default stops at
#: 1e-4 of a looser criterion, so this solution is at least as close to the optimum as LinearSVC's.
DEFAULT_TOL = 1e-6
MAX_NEWTON_STEPS = 100
MAX_CG_STEPS = 500
ARMIJO = 0.01  # sufficient decrease of the line search (liblinear's eta)


@dataclass(frozen=True)
class LinearSVM:
    """A fitted one-vs-rest model: ``scores = x @ weight.T + bias`` (as LinearSVC's ``coef_`` and
    ``intercept_``), ``classes[argmax(scores)]`` is the prediction."""

    weight: torch.Tensor  # (K, D) float64
    bias: torch.Tensor  # (K,) float64
    classes: torch.Tensor  # (K,) int64, sorted
    newton_steps: int
    converged: bool

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64) @ self.weight.T + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        # argmax takes the first maximum, as LinearSVC's predict (classes_[argmax(decision_function)]).
        return self.classes[self.decision_function(x).argmax(dim=1)]


def fit_linear_svm(x: torch.Tensor, y: torch.Tensor, C: float = 1.0, tol: float = DEFAULT_TOL) -> LinearSVM:
    """Fit LinearSVC's one-vs-rest squared-hinge problem (see the module docstring) on ``x`` (N, D)
    with labels ``y`` (N,); at least two classes. Deterministic: no random order anywhere."""
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    x = torch.as_tensor(x).to(torch.float64)
    y = torch.as_tensor(y).to(torch.int64).reshape(-1)
    if x.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (N, D) with N = len(y); got {tuple(x.shape)} and {tuple(y.shape)}")
    classes = torch.unique(y)
    if classes.numel() < 2:
        raise ValueError("a linear SVM needs at least two classes")
    n = x.shape[0]
    augmented = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)  # intercept_scaling = 1
    basis, z, eigenvalues = _principal_basis(augmented)
    targets = torch.where(y[:, None] == classes[None, :], 1.0, -1.0).to(torch.float64)  # (N, K)
    w, steps, converged = _newton(z, targets, eigenvalues, C, tol)
    full = basis @ w  # (D + 1, K) back in the original coordinates
    return LinearSVM(full[:-1].T.contiguous(), full[-1].clone(), classes, steps, converged)


def _principal_basis(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(basis, z, lam)``: an orthonormal basis (D, R) of the directions the solution can take, the
    data in it ``z = x @ basis`` (N, R) with ``z^T z = diag(lam)``. With N >= D the basis is all of
    R^D (eigenvectors of ``x^T x``); with N < D the solution lies in the row space of ``x`` (the
    gradient of the loss does, and the regulariser pulls every other component to 0), so the basis
    is the row space, from the eigenvectors of the N x N Gram matrix."""
    n, d = x.shape
    if n >= d:
        lam, basis = torch.linalg.eigh(x.T @ x)
        return basis, x @ basis, lam.clamp_min(0.0)
    lam, u = torch.linalg.eigh(x @ x.T)
    keep = lam > lam.max() * d * torch.finfo(torch.float64).eps  # numerical rank
    lam, u = lam[keep], u[:, keep]
    basis = (x.T @ u) / lam.sqrt()  # right singular vectors
    return basis, u * lam.sqrt(), lam


def _objective(margin_gap: torch.Tensor, w: torch.Tensor, C: float) -> torch.Tensor:
    """Per-class objective from ``1 - y * score`` (N, K) and the weights (R, K)."""
    return 0.5 * (w * w).sum(0) + C * margin_gap.clamp_min(0.0).square().sum(0)


def _newton(z: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, C: float, tol: float) -> tuple[torch.Tensor, int, bool]:
    """Truncated Newton with line search for all K classes at once; returns (w (R, K), steps, converged)."""
    w = torch.zeros(z.shape[1], t.shape[1], dtype=torch.float64)
    scores = torch.zeros_like(t)  # z @ w, kept up to date instead of recomputed
    preconditioner = (1.0 + 2.0 * C * lam)[:, None]
    first_norm = None
    for step in range(MAX_NEWTON_STEPS):
        gap = 1.0 - t * scores
        active = (gap > 0).to(torch.float64)
        grad = w + 2.0 * C * (z.T @ (active * (scores - t)))
        norm = grad.norm(dim=0)
        first_norm = norm if first_norm is None else first_norm
        if bool((norm <= tol * first_norm).all()):
            return w, step, True
        # Forcing term: loose while far from the optimum, tight near it (superlinear convergence).
        forcing = torch.minimum(torch.full_like(norm, 0.1), (norm / first_norm).sqrt())
        direction = _conjugate_gradient(z, active, C, grad, preconditioner, forcing)
        dir_scores = z @ direction
        slope = (grad * direction).sum(0)  # < 0: a descent direction
        before = _objective(gap, w, C)
        size = torch.ones_like(norm)
        for _ in range(40):  # Armijo backtracking, per class
            trial = _objective(1.0 - t * (scores + size * dir_scores), w + size * direction, C)
            ok = trial <= before + ARMIJO * size * slope
            if bool(ok.all()):
                break
            size = torch.where(ok, size, size / 2)
        w = w + size * direction
        scores = scores + size * dir_scores
    return w, MAX_NEWTON_STEPS, False


def _conjugate_gradient(
    z: torch.Tensor, active: torch.Tensor, C: float, grad: torch.Tensor, preconditioner: torch.Tensor, forcing: torch.Tensor
) -> torch.Tensor:
    """Solve ``(I + 2C z_A^T z_A) d = -grad`` per class (column) by preconditioned CG, each column until
    its residual is below ``forcing * ||grad||``."""

    def hessian_times(v: torch.Tensor) -> torch.Tensor:
        return v + 2.0 * C * (z.T @ (active * (z @ v)))

    d = torch.zeros_like(grad)
    r = -grad
    goal = forcing * grad.norm(dim=0)
    s = r / preconditioner
    p = s.clone()
    rs = (r * s).sum(0)
    for _ in range(MAX_CG_STEPS):
        live = r.norm(dim=0) > goal  # a column that reached its goal stops moving
        if not bool(live.any()):
            break
        hp = hessian_times(p)
        curvature = (p * hp).sum(0)
        alpha = torch.where(live & (curvature > 0), rs / curvature.clamp_min(1e-300), torch.zeros_like(rs))
        d = d + alpha * p
        r = r - alpha * hp
        s = r / preconditioner
        rs_new = (r * s).sum(0)
        beta = torch.where(rs > 0, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = s + beta * p
        rs = rs_new
    return d


__all__ = ["SOLVER", "DEFAULT_TOL", "LinearSVM", "fit_linear_svm"]
