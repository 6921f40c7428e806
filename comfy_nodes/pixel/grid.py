"""Pseudo-pixel grid detection and snapping: recover the true sprite from fake pixel art.

Diffusion models draw "pixel art" whose fake pixels are 6-20 source pixels wide, uneven
(cells differ by 1-2 px), at an arbitrary phase, blurred, noisy and JPEG-compressed, and on
some images the grid drifts and bends. This module finds the grid lines per axis;
:mod:`comfy_nodes.pixel.cells` takes one robust colour per cell (step 5), and :func:`snap`
does both.

Pipeline (each axis separately):

0. Transparency: what an image stores under its transparent pixels is arbitrary, so detection
   reads it composited over grey (``_detection_view``), its noise floors are measured on the
   pixels that are not transparent, and a cell's colour comes from its opaque samples only.
1. Edge profile: per-pixel span-3 colour differences (robust to blur that spreads an edge
   over 2-4 px), minus a noise floor, capped so a few strong outlines cannot drown the weak
   edges, summed over the other axis; JPEG's fixed 8 px block edges and the flat noise
   baseline are removed. A strong edge whose evidence hits the cap keeps the peak of its
   uncapped profile, so a sprite's blurred silhouette holds one line, not two.
2. Period: the strongest peak of the spectrum of the edges' ridges (each blurred edge
   reduced to its crest, so 6-7 px cells with jitter stay a lattice; a jittered lattice puts most of
   its energy in the fundamental; sub-harmonics of a lattice are empty), refined by a fine
   DTFT scan; twin peaks of a drifting grid give their weighted centre. When the two axes
   disagree by more than 25 %, the period both spectra support is used (cells are square);
   when the ridge estimates disagree by more than 10 %, a pairing with the full edge
   profile's estimates that agrees is preferred (a ridge peak can be a content motif);
   failing both, the axis with the weaker spectrum takes its peak near the other's period.
   An axis so steered is also read at its own period, which wins when it explains the
   colours better: art drawn with wide or tall pixels keeps its cells' shape. Axes still
   apart are each read again from the other's period (``_square_retry``); a long axis whose
   cells come out far flatter at the short one's period takes it.
3. Lines: dynamic programming over boundary positions that maximises edge energy under a
   gap prior around the local period (allows jitter, slow drift and the odd wide cell); a
   second pass follows the local period (measured on lines that sit on edges); an edgeless
   line inside a gap of up to two periods stays or goes by whether the lattices on either side
   meet across the gap after two periods (two cells) or ~1.4 (one wide cell); when they do
   not tell, by whether both halves are short. The cells of each flat stretch between lines
   on edges are then recounted on the lattices of the lines either side (heavy jitter puts
   neighbouring lines up to 1.7 periods apart). Lines packed more densely than the spectral
   period (the ringing of a resampled upscale) are read again on the edges' crests. An axis
   whose lines on edges fall off any smooth lattice (a motif's spectral peak a few percent off
   the cells' catches the detailed parts' edges but miscounts the flat stretches between
   them) is read again from its spectrum's other peaks nearby (``_peak_retry``).
4. Margins: flat background carries no grid, so lines are extrapolated on a lattice fitted
   to the lines that sit on real edges (each margin from the lines nearest to it, as a
   drifting grid's one global lattice is off by pixels at the ends); a border cell counts when more than half of its
   nominal extent lies inside the image. Only when that decision is uncertain is it
   tie-broken towards a sprite size that is a multiple of ``SIZE_PRIOR_MULTIPLE``.
5. Colour: once the lines are decided, each line on an edge moves to the edge's crest (to a
   fraction of a pixel, within a fifth of a cell: ``_on_edge_crests``), where the line search
   had traded it against even gaps; then, in :mod:`~comfy_nodes.pixel.cells`, the median of a
   k x k lattice of samples in each cell's interior, away from the blurred edges (on cells
   under ``DEBLUR_MAX_CELL`` px, where the blur reaches the interior, the blur is measured and
   its share of the neighbours' colours taken back out: ``_deblurred``); on noisy images
   cells are clustered in OKLab and a smoothed residual field removes the colour drift
   diffusion output adds (``consolidate_colours``: over 3 cells, or 2 where a strong drift
   changes faster than that).
6. No grid: besides a weak spectrum, a lattice whose cells explain the colours hardly better
   than the same lattice shifted by half a cell is rejected (``_phase_ratio``): a photo or
   painting has spectral peaks, but its colours do not change at any lattice's lines. So is
   one inside whose cells the colours vary far beyond the image's pixel noise
   (``_cell_flatness``): the lines of a photo, clip-art or screenshot can sit on its
   strongest edges, but the inside of a pseudo pixel is one colour. On an image of many
   colours, so is the lattice finally chosen when the art's own pixels lie inside its cells
   (``_detail_share``): pixel art already at its true resolution, read on its tiles, which
   is kept as it is when crisp (``_crisp``).
7. Split cells: some AI images draw a faint grid of their own inside every pseudo pixel, at
   half its size, and the detector then finds that finer lattice. When either axis profile
   shows a strong sub-harmonic, both axes are tried at twice their period; the coarser lines
   win when, on both axes, they explain the colours almost as well, over the image and in
   its detailed parts (``_merge_split_cells``).
8. Smooth enlargements: pixel art enlarged by a smooth filter (bilinear, bicubic, Lanczos)
   draws each true pixel as a ramp a whole cell wide, so its edges place no lines; its colours
   bend little for how much they change (``_smoothness``). Its lattice is found the same way
   on curvature maps (``_kink_maps``), whose peaks are the cells' centres, with the cell
   boundaries half way between them, and each cell is sampled at its centre. Where noise or
   JPEG leave the kind in doubt, both readings are made (``_better_of``).

Known limits: a grid that bends (lines curving by a fraction of a cell across the image)
is followed only on average; with cells under ~7 px and +-2 px jitter the spectrum may lock
onto a content period instead of the cell.

Coordinates are source pixels; a line at position ``x`` is the boundary between source
pixel columns ``x - 1`` and ``x``.
"""
from __future__ import annotations

import contextvars
import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .cells import sample_cells, sample_coords, shared_frame_colours
from .errors import InputImageError, InvalidArgumentError, NoGridFoundError
from .imageio import as_rgba
from .stats import median, percentile_rows, quantile

#: Smallest and largest cell size (source px) the automatic detector looks for.
MIN_CELL = 2.5
#: Under this cell size (px) the edges are also read pixel to pixel (see :func:`_edge_maps`
#: and :func:`_find_grid`), and so they are under ``FINE_SCREEN`` times it when their
#: spectrum says so; a finer grid then wins with under ``FINE_WIN`` of the error.
FINE_CELL = 4.5
FINE_SCREEN = 3.0
FINE_WIN = 0.7
#: Cells under this many px are searched for on sub-pixel positions, SUBPIXEL_STEPS to a cell
#: (:func:`_dp_lines_fine`): whole-pixel gaps miscount flat stretches.
SUBPIXEL_CELL = 6.0
SUBPIXEL_STEPS = 16
MAX_CELL = 64.0
#: An image with flat margins is taken as an exact nearest-neighbour enlargement by ``g`` when
#: its runs of identical columns (rows) are all multiples of ``g`` and ``g ** runs`` reaches
#: ``2 ** EXACT_RUNS``: eight runs sharing a factor 2 by chance is as unlikely as three
#: sharing 8 (see :func:`_exact_runs`).
EXACT_RUNS = 8
#: A cell size given by hand may be refined by the edges by at most this share (a drawn grid's
#: jitter and drift); beyond it the given size stands.
CELL_GIVEN_SLACK = 0.03
#: At most this many distinct colours: a sprite at its true resolution, not pseudo pixel art.
TRUE_COLOURS = 256
#: Box blur radius (px; 1.5 spans 4 px) through which the detector reads an image of at most
#: TRUE_COLOURS colours over SOFTEN_MIN_SIDE px a side (see _softened). snap-dev's inputs mapped
#: by Palette Quantize to PICO-8 (no dither / Bayer 4x4) and to 16 k-means colours (the same),
#: size exact: unblurred 56 / 26 / 82 / 85 %, radius 1: 68 / 81 / 92 / 93 %, 1.5: 75 / 79 / 94 /
#: 93 %, 2: 69 / 74 / 83 / 88 % (a Gaussian of 1.2 px: 72 / 81 / 93 / 93 %, at twice the time).
#: Up to 256 px a few-colour image without a grid is taken as a sprite anyway, and blurred,
#: windows of true-resolution tile sheets found lattices of their motifs (true-art kept 76 -> 71 %).
#: SOFTEN_MIN_SIDE is that one boundary of small images throughout: up to it a few-colour image
#: without a grid is a sprite (_looks_true_resolution), and a lattice found on one is checked
#: by how often its cells keep one colour (_mode_share); above it, it is read through the blur.
SOFTEN_RADIUS = 1.5
SOFTEN_MIN_SIDE = 256
#: An image at most this many px a side (of two colours or more) is a sprite at its true
#: resolution unless it is an exact enlargement: pseudo pixel art so small would be 25 cells
#: across at the smallest cell, and no diffusion model draws it, while a sprite's own texture
#: (a 4 px brick, a dither, a sheet of coins) offers a lattice that reduced a 48 px sprite to 12.
TINY_SPRITE = 64
#: A lattice over an image of more than TRUE_COLOURS colours is no pseudo pixel grid when
#: more than DETAIL_MAX of the pixels inside its cells differ from their cell's colour by more
#: than DETAIL_LEVEL (0-255) in a channel (see _detail_share). snap-dev's inputs and the real
#: AI images, resized 0.5-1x, measure at most 1.2 % (one warped case 3.4 % at 0.6x); windows
#: of Dungeon Crawl's tile sheets read on a lattice of their tiles or motifs 4.5-56 % (48 of
#: 53; the other 5 hold low-contrast texture, 0.2-3.2 %).
DETAIL_LEVEL = 48
DETAIL_MAX = 0.04
#: ... and such a lattice over an image whose pixels repeat a neighbour's exact colour this
#: often, with at most CRISP_SOFT of the differing neighbours CRISP_STEP levels apart or less,
#: is one over pixel art at its true resolution (see _crisp).
CRISP_SHARE = 0.5
CRISP_SOFT = 0.5
CRISP_STEP = 12
#: A lattice whose cells all read one colour in an image that is not flat is no pseudo pixel
#: grid (a sprite sheet's frames centred on its lines: its cells read the gaps between them;
#: crisp art is then kept as it is); it is looked at closely when this share of its cells'
#: centres are one colour (see _blank_cells).
BLANK_SHARE = 0.9
#: A lattice that a crisp image's colour changes fit (see _lattice_fit) is taken when changes
#: that many would fit one by chance less often than this.
EXACT_LATTICE_CHANCE = 1e-3
#: ... for both axes together (the product of the two axes' chances), each axis alone under
#: this: a small sprite at 2.1-2.25x has 11-14 changes an axis, each axis alone 0.5-2 % likely
#: by chance, both together under 1e-3.
EXACT_LATTICE_CHANCE_AXIS = 0.05
#: A whole sprite resized by a factor between 1 and 2 (see _resized_grid) is taken when its
#: changes would all start a cell by chance less often than this, both axes together. Of
#: snap-dev's true sprites (as they are and on a colour), the likeliest by that measure is a
#: 16 px sheet of blocks at 2.4e-4; of the same sprites resized 1.25-1.75 times with Pillow,
#: 394 of 576 measure under 1e-5 (440 under 1e-4).
RESIZED_CHANCE = 1e-5
#: JPEG's block size (px). A JPEG enlarged f times has block edges every 8f px from the image's
#: origin; a lattice within ``JPEG_LOCK`` px of such a period (a whole multiple of half a block,
#: from 1.5 blocks: 1.5, 2, 2.5, 3 ... times), on lines at its multiples, is read again without
#: those edges (see :func:`_jpeg_block_period`).
JPEG_BLOCK = 8
JPEG_LOCK = 0.04
#: The enlarged block periods (px) looked for: where no grid is found at all, and in the
#: edge profiles (from ENLARGED_BLOCK_MIN).
JPEG_PERIODS = tuple(range(3 * JPEG_BLOCK // 2, 5 * JPEG_BLOCK + 1, JPEG_BLOCK // 2))
#: The edge profiles are cleared of an enlarged JPEG's block edges from this spacing (px, 3
#: times and more) when the boundaries near its multiples stand this many times over the
#: median residue's (see _enlarged_blocks). Under it the spacing is an art cell's size
#: (12-20 px are common) and coincides by chance: mirrored, a 12 px grid was taken for blocks.
ENLARGED_BLOCK_MIN = 24
ENLARGED_BLOCK_MARK = 1.8
BLOCKS_EVERYWHERE = 0.7
#: The edge maps use at most this many rows (for x lines) and columns (for y lines), so the
#: analysis of very large images stays bounded in time and memory.
MAX_ANALYSIS_LINES = 512
#: Below this detection confidence (0..1) the automatic mode reports "no pixel grid found".
MIN_CONFIDENCE = 0.35
#: A lattice whose cells explain the colours no better than this fraction of the same lattice
#: shifted by half a cell is no pixel grid (see _phase_ratio).
PHASE_RATIO_MAX = 0.95
#: ... and one whose cells' colours explain under FLAT_R2_MIN of the variance inside them,
#: where those pixels stray from their cell's colour by more than FLAT_NOISE_MAX times the
#: image's pixel noise (see _cell_flatness).
FLAT_R2_MIN = 0.85
FLAT_NOISE_MAX = 2.0
#: ... and one whose pixels stray by more than FLAT_NOISE_HARD times the noise where its cells
#: explain under FLAT_R2_HARD: a smooth drawing's anti-aliased curves strayed 4.4-5.5 times
#: with 91 % explained (snapped to 15 x 14 cells of 70 px at confidence 0.92), a photo 5.9 with
#: 92 %. Pseudo pixel art's lattices on the benchmarks (921, at five scales, cut out,
#: re-degraded, other sources) stray at most 2.7 times, real AI images' 0.8; pixel art
#: enlarged by bicubic or Lanczos strays 3.5-5.1 times but with 95-98 % explained, and so
#: does a faint grid drawn inside the cells (95 %).
FLAT_NOISE_HARD = 3.5
FLAT_R2_HARD = 0.93
#: Below this ratio of second to first colour differences an image is a smooth enlargement
#: (bilinear, bicubic, Lanczos), whose grid is found on its cells' centres (see _smoothness).
SMOOTH_RATIO = 0.4
#: Up to this ratio an image may be a smooth enlargement under noise or JPEG: both readings
#: are made, and the smooth one is kept when it redraws the image with under SMOOTH_WIN of
#: the other's error (see _smooth_candidate, _better_of).
SMOOTH_DOUBT = 0.8
SMOOTH_WIN = 0.65
#: ... and whose cells are sampled on this central fraction: a bilinear ramp is 5 % of the way
#: to the next colour at 0.05 cell from the centre.
SMOOTH_INNER = 0.1
#: A smooth enlargement's cells up to this size (px) are looked inside for pseudo pixel art
#: (an image enlarged 3 or 4 times by an upscale node), as a nearest one's blocks are.
ENLARGED_PIXEL = 8.0
#: A lattice found on a few-colour image of at most SOFTEN_MIN_SIDE px a side whose cells'
#: inner halves keep their most common colour less than this often (:func:`_mode_share`) is
#: laid over art at its true resolution, not over pseudo pixels. Larger images are read through
#: the blur and not judged so: at every size, snap-dev mapped to 16 colours lost 94 -> 86 %
#: size exact (Bayer 93 -> 82 %, PICO-8 with Floyd-Steinberg 82 -> 74 %), and no true-art
#: window or atlas over 256 px was kept that was not before.
MODE_SHARE_MIN = 0.5
#: Pixels per band of the whole-image passes over alpha (256 KB of RGBA): a band and its
#: temporaries then stay in the CPU's cache from one pass to the next, where 4 MB bands went out
#: to memory on each (a third of the time of compositing a 1024 x 1024 cut-out).
_BAND = 1 << 16
#: Grey level that transparency is composited over before detection (see _detection_view).
DETECTION_BACKDROP = 128
#: Flat margins are continued from the lines nearest them: the last END_LINES lines of each
#: end give that end's position and cell size (diffusion grids drift 4-8 % in cell size across
#: the image and bend, so the whole image's cell size is off by up to a cell over a wide
#: margin). A local cell size more than END_SLOPE_MAX off the whole image's is a misnumbered
#: line, not drift. With fewer than END_MIN_LINES lines at an end, or fewer than END_MIN_TOTAL
#: in all (the two ends would share most of their lines: no more local than the whole image's
#: size, and noisier), the whole image's cell size is used.
#: bench/snap_other_sources.py, three seeds: warp solved 50/40/65 % -> 56/50/71 %.
END_LINES = 12
END_MIN_LINES = 5
END_SLOPE_MAX = 0.04
END_MIN_TOTAL = 18
#: Uncertain border cells are tie-broken towards sprite sizes that are multiples of this
#: (0 disables); "uncertain" = the straddling cell is within SIZE_PRIOR_DOUBT of half inside.
SIZE_PRIOR_MULTIPLE = 8
SIZE_PRIOR_DOUBT = 0.2
#: ... widened by this much per flat background cell the border was extrapolated over. More
#: trades sizes that are not multiples of 8 for those that are: at 0.03, snap-dev +1 case at
#: each scale and warped grids around its sprites +3 of 78, generated sprites on canvases of
#: random size -16 points.
MARGIN_DOUBT = 0.01
#: The flat margins' cells are re-divided between the two sides at their own mean size when
#: the art's period puts the left side's count more than half a cell plus this (cells) off it
#: (see _split_margins; inf disables). At 0: warped grids around snap-dev's sprites +3 of 78,
#: but cut border cells on the hard level moved too (other sources' hard -1 of 48); at 0.05
#: nothing measured was lost (warped sample sprites +2 of 160, the other-sources bench +2 of 348).
MARGIN_SPLIT_SLACK = 0.05
#: An axis whose lines on edges fit a cell size more than this fraction off the period its
#: line search ran at is searched once more at the size they fit (see _detect_axis).
#: snap-dev pyxel-jump_mountains-hard accuracy 0.816 -> 0.913, generated drawn-grid sprites
#: +1 of 160; other sources (six draws), the other generated families unchanged.
REFOLLOW = 0.08
#: Axes whose counts differ by one, one of them a multiple of SIZE_PRIOR_MULTIPLE, have the
#: other's flat margins re-divided to the same count when they hold at least this many cells
#: and their mean cell then stays within SQUARE_COUNT_DRIFT (a fraction) of the art's (see
#: _square_counts). snap-dev 69 -> 71 of 72 sizes exact; bench/snap_other_sources.py warp
#: 71 -> 88 % (seed 12345) and 79 -> 90 % (seed 1).
SQUARE_COUNT_MARGIN = 8
SQUARE_COUNT_DRIFT = 0.08
#: ... on cells whose two axes' periods are at most this far apart: diffusion draws cells within
#: a few percent of square, and a warped grid's axes read up to 11 % apart (7.4 x 8.2 px for
#: cells of 7.8); art drawn with wide or tall pixels has cells 1.3-2x as wide as tall or more.
SQUARE_COUNT_ASPECT = 1.2
#: Largest ratio of the two axes' cell sizes taken as "the same square-ish pseudo pixel"
#: (diffusion output draws cells within a few percent of square).
SQUARE_TOLERANCE = 1.10
#: The common period of two wildly disagreeing axes (:func:`_square_hint`) is the double of
#: the best one when both spectra support the double this much as well (a subharmonic tie).
#: A real image (a bat, 28 x 28 cells of 36 px) drew one axis at half its cell in 4 of its 8
#: orientations (56 x 28): its two candidates scored 0.686 and 0.700 there. At 0.8 or 0.9,
#: nothing else measured moved (snap-dev at 5 scales, re-degraded, cut out; other sources;
#: bench/snap_invariance.py: real images 65 -> 69 of 72 orientations at their upright size).
SUBHARMONIC_TIE = 0.9
#: When the two axes' periods agree within SQUARE_TOLERANCE, the weaker axis takes the peak
#: of its spectrum nearest to the other's period if that peak has this share of its strongest
#: (see _nearly_square).
SQUARE_TIE = 0.8
#: A slip of the DP's numbering against the spectral lattice (see _fix_slips) is a step of one
#: period within SLIP_TOL in the offsets of the lines on edges, held by SLIP_SIDE of them a side
#: within SLIP_FIT periods rms, explaining them better than a straight trend by SLIP_GAIN
#: variances and with no trend within a side (SLIP_TREND variances); SLIP_ROUNDS at most.
SLIP_ROUNDS = 3
SLIP_SIDE = 5
SLIP_FIT = 0.2
SLIP_GAIN = 25.0
SLIP_TOL = 0.25
SLIP_TREND = 25.0
#: how much lower the phase ratio of an axis read again from the other axis's period must be
#: (:func:`_square_retry`)
RETRY_MARGIN = 0.01
#: ... and how many times (a fixed axis can make the other one's retry worth it)
RETRY_ROUNDS = 3
#: ... or, for an axis whose cells were read more than SQUARE_TOLERANCE longer than the
#: other's, a reading at the other's period whose cells are far flatter: a noise ratio at most
#: SQUARE_FLAT of the long cells', R^2 no lower, a phase ratio under SQUARE_FLAT_PHASE (clearly
#: a grid), where the long reading itself held the colours (a lattice on no pixel art stays
#: rejected). A small sprite with few edges at the hard level's settings had one axis read 2-9
#: cells long (46 x 6 cells for 32 x 32): its square reading measured 0.54-0.88. Cells that
#: really are 1-2x non-square measured 0.955 or more read at the short side (278 generated
#: such sprites), so they keep their shape.
SQUARE_FLAT = 0.9
SQUARE_FLAT_PHASE = 0.85
#: A period one axis's own spectrum puts forward at least this many times finer than the
#: grid's cells is read on both axes and kept on SQUARE_FLAT's terms (see _estimate_retry). The
#: motifs it undoes are 1.5-8 cells long; a reading 10-25 % finer is flatter only for having
#: more cells on a heavily jittered grid (a 6.8 px sprite read at 6.05 px measured 0.87).
FINER_RETRY = 1.25
#: ... and only when the grid's cells vary inside by more than this noise ratio: a pseudo pixel
#: is one colour plus noise (a noise ratio of at most 1.3 on low-contrast art, see
#: _cell_flatness), so cells that flat hide no finer ones. The sprites it fixed measured 1.44-3.2;
#: the real AI images, 0.2-0.8, are spared the reads (which had cost their median snap 2-3 ms,
#: and one of them 46 ms for a half period the merge test then refused).
FINER_NOISE = 1.3
#: A motif several cells long (a parquet tile's planks and blocks, 4-8 cells) can outbid the
#: cells in every profile's strongest peak, and the pairing then reads the motif on both axes
#: (6 x 6 cells for 48 x 48). The cells still stand out as a lesser peak of a ridge profile's
#: spectrum: its strongest peak at least FAR_FINER times finer than the grid's cells and at
#: least FAR_PEAK of the spectrum's highest is read as well (see _far_peaks), and kept on
#: _estimate_retry's terms when its cells are also at most FAR_FLAT as noisy as the motif's.
#: The motifs it undid measured 0.41-0.77; a true grid read at half its cells (which lines in
#: the art can favour, and _merge_split_cells decides) 0.83. Half the cells (within
#: HALF_CELL) is not such a candidate: two cells of a 2-cell reading are no motif. Nor is a
#: reading that holds no colours (_not_pixel_art): a scene on 3.3 px cells first read at
#: 18.5 px took a far peak's 5.5 px, which held enough to pass, over the finer detection that
#: finds its 3.3.
FAR_FINER = 1.8
FAR_PEAK = 0.8
FAR_FLAT = 0.8
HALF_CELL = 0.06
#: An axis steered to the other's period is read again at its own (see _own_periods); a pair
#: at whole multiples of the square periods must lower the phase ratio by OWN_MULT_GAIN, keep
#: the noise ratio within OWN_MULT_FLAT of the square cells' and R^2 within OWN_MULT_R2, and
#: the square reading must itself follow the colours (phase ratio under OWN_MULT_BASE).
OWN_MULT_GAIN = 0.05
OWN_MULT_FLAT = 0.03
OWN_MULT_R2 = 0.002
OWN_MULT_BASE = 0.8
#: Lines farther than this many cells from a gap are left out of the lattices that decide
#: it: a 3 % drift moves them a third of a cell.
REACH = 12.0
#: ... and only when each side's nearest line on an edge is within this many periods of the
#: gap: further off, the lattice carried to the gap is off by more than a wide cell's 0.4.
#: Other sources' hard level +1 solved of 48, snap-dev at 0.5x +1, re-degraded warp +1 exact.
SIDE_NEAR = 3.0
#: Where the lattices on either side of an edgeless gap meet, in periods: below SPAN_WIDE it
#: is one wide cell (drawn 1.35-1.5x), from SPAN_TWO on two cells; in between, real grids that
#: drift (measured 1.57 for two cells) and jittered wide cells overlap, and the gap's halves
#: decide. Pairs of same-coloured cells are far more common than wide cells.
SPAN_WIDE = 1.5
SPAN_TWO = 1.75
#: Other spectral peaks within PEAK_NEAR (and beyond PEAK_MIN) of an axis's period and at least
#: PEAK_HEIGHT of its level are read too when the axis's lines on edges are off a lattice by
#: MISFIT_BAD periods RMS; such a reading wins at MISFIT_GAIN of that misfit (see _peak_retry).
#: Over 4,800 generated and benchmark readings the misfit is 0.05-0.13 (median), 99 % under
#: 0.25, at most 0.37 (drawn grid lines); a motif's peak 8 % off the cells measured 0.64.
PEAK_NEAR = 0.15
PEAK_MIN = 0.04
PEAK_HEIGHT = 0.6
MISFIT_BAD = 0.4
MISFIT_GAIN = 0.5
#: Normalised edge evidence from which a line counts as sitting on a real edge.
ON_EDGE = 0.3
#: How far (periods) a line on an edge may move to the crest of that edge once the lattice is
#: decided: the line search trades evidence against even gaps and leaves jittered lines
#: ~0.4 px off their edges on average; 0.3 lets a Lanczos ringing lobe capture a line.
LINE_REFINE = 0.2
#: Normalised edge evidence is capped here (1 = a typical strong edge of the image).
EVIDENCE_CAP = 1.5
#: How far (source px, Gaussian width) edge evidence reaches from the crest of its edge.
CREST_WIDTH = 1.5
#: Normalised edge evidence above which a position is part of the art (not flat background).
ACTIVE_EVIDENCE = 0.15
#: The automatic period is at most 1/MIN_CELLS_ACROSS of the span of the art's edges.
MIN_CELLS_ACROSS = 6
#: Lines packed more than this share denser than the spectral period are read again on the
#: edges' crests (resampled, ringing upscales), and those are kept when their period agrees
#: with the spectrum within CREST_AGREE.
DENSE_LINES = 0.04
CREST_AGREE = 0.02
#: A grid is tried at twice its period when an axis profile's sub-harmonic there reaches this
#: share of the fundamental (under it on 83-97 % of true grids, over it on every split one).
SPLIT_SCREEN = 0.6
#: The coarser lattice replaces the finer one when, on both axes, its extra reconstruction
#: error is below this share of the half-shifted lattice's (a split grid: under 0.45 on both;
#: a true grid: 0.74 or more on at least one).
SPLIT_MAX = 0.5
#: ... and, in blocks of about four cells where a half-cell shift costs something, at the 90th
#: percentile below this share (split grids: 0.3-0.7; true grids: 0.98 or more).
SPLIT_LOCAL_MAX = 0.85
#: The blocks where the shift costs something are those within a quarter of the costliest; a
#: sprite's outline on a contrasting background costs it 5-30 times what low-contrast art
#: inside does (a ground tile, dirt fading into grass), so there only the outline's blocks
#: counted, and an outline on every other line pairs as a split grid's colours do (24 x 24
#: cells for 48 x 48). The quieter blocks, from SPLIT_QUIET of the costliest, must then pair
#: too: when there are at least SPLIT_QUIET_BLOCKS of them, their median share is held to
#: SPLIT_LOCAL_MAX as well (16 such tiles: 1.05-1.3; 80 sprites under a drawn half-cell grid,
#: every read of them: at most 0.35).
SPLIT_QUIET = 0.1
SPLIT_QUIET_BLOCKS = 6
#: In automatic mode a grid whose cells are more than this many times as wide as tall (or as
#: tall as wide) is no pseudo pixel grid (see _find_grid).
MAX_CELL_RATIO = 3.0
#: ... nor is one of fewer cells than this across its art (between the flat borders) on either
#: axis: a sprite already at its true resolution (48x48, its art 16 px across) offers lattices
#: of 2x2 cells of 24 px, or of 8x9 with the art in 2 of them, which would reduce it to a few
#: pixels. Of the 144 true sprites of snap-dev (as they are and composited on their
#: background) 24 came out a few pixels wide so, now 5 (cells of 3.9-4.6 px, their art 4-7
#: cells across); the pseudo pixel art of snap-dev, the other-sources bench and the real
#: images has 8 or more.
MIN_GRID_CELLS = 4


@dataclass
class Grid:
    """A detected (or given) pseudo-pixel grid.

    ``x_lines`` (cols + 1 values) and ``y_lines`` (rows + 1 values) are the cell boundaries in
    source pixels; they may lie slightly outside the image for border cells that are cut.
    ``cell_w``/``cell_h`` are the mean cell size (source px, fractional), ``confidence`` 0..1
    the strength of the grid's spectral peak (0 for the identity grid of an image taken as
    already at true resolution), ``phase`` the first line's offset modulo the cell size.
    ``smooth``: found on a smooth enlargement (see ``_smoothness``), whose cells are ramps
    that hold their true colour only at their centres, where :func:`snap` samples them.
    ``flat_border``: for a grid read on edges, the cells (left, right, top, bottom) from each
    image border to the first line on an edge (zeros for the other kinds). Over flat
    background no line is seen, so their count is the border's extent divided by the cell
    size; the more of them, the likelier a size off by one on a grid whose cell size drifts
    (give ``width``/``height`` to be sure).
    ``exact``: read off whole-pixel blocks (a nearest-neighbour enlargement, or an image already
    at true resolution): its cells hold the sprite's own colours, kept exactly as they are.
    """

    cell_w: float
    cell_h: float
    cols: int
    rows: int
    x_lines: np.ndarray
    y_lines: np.ndarray
    confidence: float = 1.0
    phase: tuple[float, float] = (0.0, 0.0)
    source_size: tuple[int, int] = (0, 0)
    smooth: bool = False
    flat_border: tuple[int, int, int, int] = (0, 0, 0, 0)
    exact: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the true-resolution sprite in true pixels."""
        return self.cols, self.rows

    @property
    def kept_as_is(self) -> bool:
        """Whether automatic mode found no grid and took the image as already at true
        resolution (the identity grid with confidence 0)."""
        return self.cell_w == 1.0 and self.cell_h == 1.0 and self.confidence == 0.0

    def to_dict(self) -> dict:
        """JSON-friendly summary (floats rounded to 0.01 px)."""
        return {
            "cols": self.cols,
            "rows": self.rows,
            "cell_w": round(float(self.cell_w), 3),
            "cell_h": round(float(self.cell_h), 3),
            "confidence": round(float(self.confidence), 3),
            "phase": [round(float(v), 3) for v in self.phase],
            "x_lines": [round(float(v), 2) for v in self.x_lines],
            "y_lines": [round(float(v), 2) for v in self.y_lines],
            "source_size": list(self.source_size),
            "smooth": bool(self.smooth),
            "flat_border": [int(v) for v in self.flat_border],
        }


@dataclass
class SnapResult:
    """Result of :func:`snap`: the true-resolution sprite and the grid it was sampled on."""

    image: np.ndarray  # (rows, cols, 4) uint8 RGBA
    grid: Grid
    #: in a batch (:func:`snap_batch`): why this frame's colours ignore the grid it was snapped
    #: on (it is no pseudo pixel art on that grid: another picture, scale or phase), else None
    off_grid: str | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass
class _Axis:
    """Result of one axis: all cell boundaries, mean period (source px), confidence 0..1."""

    lines: np.ndarray
    period: float
    confidence: float


# --------------------------------------------------------------------------- edge profiles
def _edge_maps(img: np.ndarray, stride: int, span: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength per boundary along x and y, noise-floored and capped.

    ``img`` is (H, W, C) uint8 with C >= 3; only the first three channels count. Returns
    ``ex`` (rows_sampled, W + 1) and ``ey`` (H + 1, cols_sampled) float32 where ``ex[:, b]`` is
    the evidence for a vertical line at boundary ``b``. Only every ``stride``-th row (column) is
    used: grid lines span whole cells, so sparse sampling loses little and bounds the cost.
    With ``span`` 3, boundary ``b`` (between pixels b-1 and b) compares pixel b+1 with b-2: a
    span of 3 covers an edge blurred over 2-4 px. With ``span`` 1 it compares b with b-1: on
    cells of 3 px the span-3 response of each line fills the whole cell, so it has no phase.
    """
    h, w, c = img.shape
    lo = (span - 1) // 2 + 1  # boundary b compares pixel b + span - lo with b - lo
    ex = np.zeros((len(range(0, h, stride)), w + 1), np.float32)
    ey = np.zeros((h + 1, len(range(0, w, stride))), np.float32)
    # differences on the flat (rows, W * C) bytes: contiguous, where a strided or transposed
    # view of the colour channels costs a copy several times the work itself
    flat = np.ascontiguousarray(img).reshape(h, w * c)
    # in bands of rows a few hundred KB each: the temporaries are then reused from the heap,
    # where whole-image ones (4 MB at 1024 x 1024, 1 GB at 16k x 16k) would be fresh pages
    # on every call (3000 page faults, a tenth of a snap's time)
    band = max(1, (256 << 10) // (w * c))
    if w > span:
        rows = flat[::stride]
        for r0 in range(0, len(rows), band):
            r = rows[r0 : r0 + band]
            d = _absdiff(r[:, span * c :], r[:, : -span * c]).reshape(len(r), w - span, c)
            ex[r0 : r0 + len(r), lo : w - span + lo] = _channel_sum(d)
    if h > span:
        # only the columns the map keeps, gathered once (whole pixels as uint32 where there
        # are four channels): the differences then cost a ``stride``-th of the whole image's
        cols = _every_column(img, stride)
        nc = cols.shape[1] // c
        band = max(1, (256 << 10) // max(1, cols.shape[1]))
        for r0 in range(0, h - span, band):
            r1 = min(h - span, r0 + band)
            d = _absdiff(cols[r0 + span : r1 + span], cols[r0:r1]).reshape(r1 - r0, nc, c)
            ey[r0 + lo : r1 + lo] = _channel_sum(d)
    seen_x, seen_y = _seen(img, stride)
    return _floor_and_cap(ex, seen_x), _floor_and_cap(ey, seen_y)


def _every_column(img: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th column of ``img`` (H, W, C uint8) as a contiguous (H, cols * C) array."""
    h, w, c = img.shape
    if c == 4 and img.flags.c_contiguous:
        return np.ascontiguousarray(img.view(np.uint32)[:, ::stride, 0]).view(np.uint8).reshape(h, -1)
    return np.ascontiguousarray(img[:, ::stride]).reshape(h, -1)


def _fine_edge_maps(img: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_edge_maps` with a span of 1, for cells under ``FINE_CELL``."""
    return _edge_maps(img, stride, span=1)


def _seen(img: np.ndarray, stride: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Where the maps of :func:`_edge_maps` see something: positions within 3 px of a pixel
    that is not transparent (None, None for an opaque image). The noise floor is read there:
    a cut-out sprite's transparent surroundings are flat (see _detection_view) and would
    drive it to zero."""
    h, w, c = img.shape
    if c != 4:
        return None, None
    # only the rows and columns the maps read: a whole-image pass costs more than the maps
    ox, oy = img[::stride, :, 3] > 0, img[:, ::stride, 3] > 0
    if ox.all() and oy.all():
        return None, None
    seen_x = np.zeros((len(range(0, h, stride)), w + 1), bool)
    seen_y = np.zeros((h + 1, len(range(0, w, stride))), bool)
    if w >= 4:
        seen_x[:, 2 : w - 1] = ox[:, 3:] | ox[:, :-3]
    if h >= 4:
        seen_y[2 : h - 1] = oy[3:] | oy[:-3]
    return seen_x, seen_y


def _smoothness(img: np.ndarray, stride: int) -> float:
    """Sum of the absolute second differences of the colours along x over that of the first
    differences (on about 64 rows, channels summed). A smooth enlargement (bilinear,
    bicubic, Lanczos) draws each true pixel as a ramp a whole cell wide that bends only near
    the cells' centres: about 2 / cell, 0.17-0.25 on cells of 8-20 px. Pseudo pixel art's
    blurred steps and noise bend where they change: 0.8 or more (0.51 on benchmark art
    enlarged 3x). Only fully opaque pixels count: a background remover's matte over a smooth
    enlargement (alpha keyed on the colour) bends sharply where it cuts the ramps, and read
    with the silhouette such a cut-out measured 0.3-0.55, often past ``SMOOTH_RATIO``."""
    rows = img[:: max(stride, img.shape[0] // 64)]
    r = rows[..., :3].astype(np.int16)
    d1 = np.diff(r, axis=1)
    d2 = np.diff(d1, axis=1)
    if img.shape[-1] == 4:
        op = rows[..., 3] == 255
        d1 = d1 * (op[:, 1:] & op[:, :-1])[..., None]
        d2 = d2 * (op[:, 2:] & op[:, 1:-1] & op[:, :-2])[..., None]
    first = float(np.abs(d1).sum())
    return float(np.abs(d2).sum()) / first if first > 0 else 1.0


def _kink_maps(img: np.ndarray, stride: int, opaque_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Curvature per position along x and y, noise-floored and capped, laid out as
    :func:`_edge_maps`' maps: the absolute second difference of the colours (channels summed).

    On a smooth enlargement the first difference is flat across a whole cell and says little
    about where the cells are; the curvature peaks where each ramp bends, at the cells'
    centres, so the lattice found on these maps is the lattice of the centres. The second
    difference at pixel ``j`` is centred on position ``j + 0.5``: half of it goes to ``j`` and
    half to ``j + 1``. With ``opaque_only`` it counts only where all three pixels are fully
    opaque (see :func:`_grid_from_kinks`).
    """
    h, w, c = img.shape
    ex = np.zeros((len(range(0, h, stride)), w + 1), np.float32)
    ey = np.zeros((h + 1, len(range(0, w, stride))), np.float32)
    cut = opaque_only and c == 4
    if w >= 3:
        r = img[::stride, :, :3].astype(np.int16)
        d2 = 0.5 * np.abs(r[:, 2:] - 2 * r[:, 1:-1] + r[:, :-2]).sum(axis=-1, dtype=np.float32)
        if cut:
            op = img[::stride, :, 3] == 255
            d2 *= op[:, 2:] & op[:, 1:-1] & op[:, :-2]
        ex[:, 1 : w - 1] += d2
        ex[:, 2:w] += d2
    if h >= 3:
        band = max(1, (4 << 20) // (len(range(0, w, stride)) * 6))
        for r0 in range(0, h - 2, band):
            r1 = min(h - 2, r0 + band)
            col = img[r0 : r1 + 2, ::stride, :3].astype(np.int16)
            d2 = 0.5 * np.abs(col[2:] - 2 * col[1:-1] + col[:-2]).sum(axis=-1, dtype=np.float32)
            if cut:
                op = img[r0 : r1 + 2, ::stride, 3] == 255
                d2 *= op[2:] & op[1:-1] & op[:-2]
            ey[r0 + 1 : r1 + 1] += d2
            ey[r0 + 2 : r1 + 2] += d2
    seen_x, seen_y = _seen(img, stride)
    return _floor_and_cap(ex, seen_x), _floor_and_cap(ey, seen_y)


def _has_transparency(img: np.ndarray) -> bool:
    """Whether any pixel of ``img`` (H, W, C uint8) is not fully opaque."""
    if img.shape[-1] != 4:
        return False
    if img.flags.c_contiguous:
        # alpha is the high byte of each pixel read as a little-endian uint32: contiguous
        # passes, not a strided one, in bands so a huge image stops at its first transparent band
        packed = img.reshape(-1, 4).view("<u4")[:, 0]
        return any(bool((packed[i : i + _BAND] < 0xFF000000).any()) for i in range(0, len(packed), _BAND))
    return bool((img[..., 3] < 255).any())


def _detection_view(img: np.ndarray) -> np.ndarray:
    """``img`` (H, W, 4 uint8) as the grid detector reads it: composited over mid grey.

    What is stored under fully transparent pixels is arbitrary (the original background,
    black from a background remover, noise from an optimiser) and is no part of the sprite;
    read as it is, it moves or hides the grid. Composited, the transparency is one flat
    colour and a soft matte a ramp into it, and the sprite's silhouette is an edge like any
    other. Mid grey is never the colour of a whole silhouette as black or white (the usual
    outline and highlight) can be; on cut-out benchmark sprites it measured best of five
    levels (size exact 94 % against 91-93 %).
    """
    if not _has_transparency(img):
        return img
    px = np.ascontiguousarray(img).reshape(-1, 4)
    out = px.copy()
    # whole pixels as little-endian uint32 (alpha is the high byte): contiguous compares and
    # one masked store each, where per-channel work on the strided alpha costs several times
    # more; in bands, so a huge image needs no full-size mask
    backdrop = np.array([DETECTION_BACKDROP] * 3 + [0], np.uint8).view("<u4")
    src, dst = px.view("<u4")[:, 0], out.view("<u4")[:, 0]
    table = _over_backdrop()
    for i in range(0, len(px), _BAND):
        band = src[i : i + _BAND]
        np.copyto(dst[i : i + _BAND], backdrop, where=band < 0x01000000)  # alpha 0
        soft = i + np.flatnonzero((band - np.uint32(0x01000000)) < np.uint32(0xFE000000))  # 0 < alpha < 255
        if soft.size:
            # each soft pixel as one uint32, its channels looked up in the (alpha, level) table:
            # a third of the time of gathering the pixels' bytes channel by channel
            v = src[soft]
            row = (v >> 24) << 8
            dst[soft] = (table[row | (v & 0xFF)] | (table[row | ((v >> 8) & 0xFF)] << 8)
                         | (table[row | ((v >> 16) & 0xFF)] << 16) | (v & np.uint32(0xFF000000)))
    return out.reshape(img.shape)


@functools.lru_cache(maxsize=1)
def _over_backdrop() -> np.ndarray:
    """(alpha * 256 + level) -> the level composited over ``DETECTION_BACKDROP``: a uint32 table."""
    a = np.arange(256, dtype=np.float64)[:, None] / 255.0
    return np.round(np.arange(256)[None, :] * a + DETECTION_BACKDROP * (1.0 - a)).astype(np.uint32).ravel()


def _absdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| of uint8 arrays without widening them."""
    d = np.maximum(a, b)
    d -= np.minimum(a, b)
    return d


def _channel_sum(d: np.ndarray) -> np.ndarray:
    """Sum of the first three channels (last axis) of a uint8 array, as uint16."""
    out = d[..., 0].astype(np.uint16)
    out += d[..., 1]
    out += d[..., 2]
    return out


def _floor_and_cap(e: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """``e`` less its noise floor (read where ``seen``, default everywhere), capped."""
    if e.size == 0:
        return e
    rows = slice(None, None, max(1, e.shape[0] // 64))
    sample = e[rows].ravel()
    if seen is not None and seen[rows].any():
        sample = e[rows][seen[rows]]
    floor = float(quantile(sample, 60))
    hi = float(quantile(sample, 99))
    cap = max(floor + 1.0, min(hi, floor + 120.0))
    np.subtract(e, floor * 1.5 + 3.0, out=e)
    np.clip(e, 0.0, cap - floor, out=e)
    return e


def _ridge_profile(e: np.ndarray, axis: int) -> np.ndarray:
    """Like :func:`_profile`, but each boundary counts only where it is a local maximum of
    the edge evidence across the lines (the crest of its edge).

    A blurred edge spreads over 3-5 boundaries of the span-3 difference; when cells are
    only 6-7 px wide and jittered, neighbouring spread edges merge into a near-flat profile
    whose spectrum locks onto content instead of the cell. The crests keep the lattice sharp.
    """
    e = e if axis == 1 else e.T  # lines along the rows of the view
    out = np.zeros(e.shape[0], np.float64)
    if e.shape[0] >= 3:
        c = e[1:-1]
        crest = c >= e[:-2]
        crest &= c > e[2:]
        out[1:-1] = np.einsum("ij,ij->i", c, crest.view(np.int8).astype(np.float32))
    return out


def _profile(e: np.ndarray, axis: int) -> np.ndarray:
    return e.sum(axis=axis, dtype=np.float64)


def _remove_jpeg_blocks(p: np.ndarray) -> np.ndarray:
    """Damp JPEG's 8 px block edges when they stand out in the profile.

    Block boundaries sit at multiples of 8; with the span-3 difference they raise the
    profile at boundaries 7..9 (mod 8). A real grid spreads over all residues unless its
    period divides 8, so a clear excess at those residues is the codec, not the art. A JPEG
    enlarged 3 times or more has its block edges further apart (:func:`_enlarged_blocks`):
    those near the multiples of that spacing are damped instead. Between the art's lines the
    line search otherwise followed them (a 3x enlargement came back 46 cells wide for 48).
    """
    n = len(p)
    if n < 64:
        return p
    block = _enlarged_blocks(p)
    r = np.arange(n) % block
    means = _residue_means(p, block)
    base = median(means)
    if base <= 0:
        return p
    excess = means - base
    out = p.copy()
    for k in range(block) if block == JPEG_BLOCK else (block - 1, 0, 1):
        if excess[k] > 0.25 * base:
            out[r == k] -= excess[k]
    np.clip(out, 0.0, None, out=out)
    return out


def _enlarged_blocks(p: np.ndarray) -> int:
    """The spacing (px) of a JPEG's block edges in the profile ``p``: one of ``JPEG_PERIODS``
    from ``ENLARGED_BLOCK_MIN`` when the boundaries near its multiples stand
    ``ENLARGED_BLOCK_MARK`` times over the median residue while those near the other multiples
    of 8 do not (a JPEG enlarged 3 ... 5 times), else ``JPEG_BLOCK``: blocks at every
    multiple of 8 are a JPEG at its own size."""
    n = len(p)
    best, best_mark = JPEG_BLOCK, 0.0
    for block in JPEG_PERIODS:
        if block < ENLARGED_BLOCK_MIN:
            continue
        if n < 16 * block:
            break
        means = _residue_means(p, block)
        base = median(means)
        if base <= 0:
            continue
        mark = float(means[-1] + means[0] + means[1]) / (3.0 * base)
        if mark <= ENLARGED_BLOCK_MARK or mark <= best_mark / 0.9:
            continue
        # the residues near the other multiples of 8 (a lone 8 px block's edge is 7..9 mod 8)
        rest = [k for k in range(block) if k % JPEG_BLOCK in (7, 0, 1) and k not in (block - 1, 0, 1)]
        if float(means[rest].mean()) < 1.15 * base and _on_every_multiple(p, block):
            best, best_mark = block, mark
    return best


def _on_every_multiple(p: np.ndarray, block: int) -> bool:
    """Whether the profile ``p`` peaks (its top tenth within half a ``block`` either side) within
    a boundary of at least ``BLOCKS_EVERYWHERE`` of the multiples of ``block``: a codec's blocks
    tile the whole image, while art lines on a period near the spacing meet its multiples only
    here and there: 0.4-0.54 where a real AI image's lines stood out at such a spacing by chance
    (one 0.74, on a 28 px spacing its colours then left as they were), 0.77-1.0 on the
    benchmark's JPEGs enlarged 3x."""
    half = block // 2
    at = np.arange(block, len(p) - block, block)
    if at.size == 0:
        return False
    # every window at once: one percentile call, not one per multiple (a tenth of a snap's time)
    win = p[at[:, None] + np.arange(-half, half)[None, :]]
    top = p[at[:, None] + np.arange(-1, 2)[None, :]].max(axis=1)
    hits = int(np.count_nonzero(top >= percentile_rows(win, 90)))
    return hits >= BLOCKS_EVERYWHERE * at.size


def _residue_means(p: np.ndarray, block: int) -> np.ndarray:
    """Mean of ``p`` over the positions of each residue mod ``block``."""
    r = np.arange(len(p)) % block
    return np.bincount(r, weights=p, minlength=block) / np.bincount(r, minlength=block)


def _smooth(p: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return p
    rad = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-rad, rad + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(p, k, mode="same")


# --------------------------------------------------------------------------- period
def _nfft(n: int) -> int:
    """FFT length for a profile of ``n`` positions: zero-padded 8x (at least 4096) so that
    the peak of a period is read to a fraction of a bin."""
    return 1 << int(math.ceil(math.log2(max(n * 8, 4096))))


def _spectrum(p: np.ndarray, nfft: int) -> np.ndarray:
    """Magnitude spectrum of the profile ``p`` (less its mean, under a Hann window), read from
    this detection's memo when an earlier step already took it: the period steps read the
    same few profiles' spectra many times. Callers must not change it."""
    def compute() -> np.ndarray:
        q = p - p.mean()
        return np.abs(np.fft.rfft(q * np.hanning(len(q)), n=nfft))

    return _memo(("spectrum", nfft, p.tobytes()), compute)


def estimate_period(profile: np.ndarray, min_cell: float = MIN_CELL, max_cell: float | None = None) -> tuple[float, float]:
    """Estimate the dominant cell period (source px) of an edge profile and a 0..1 strength.

    The fundamental of a jittered lattice of edge impulses carries most of its spectral
    energy; periods 2p, 3p (sub-harmonics) are nearly empty for a true lattice, so if a
    coarser candidate is strong too, the coarser one is the real grid and the peak was its
    harmonic.
    """
    n = len(profile)
    if n < 8 or profile.sum() <= 0:
        return 0.0, 0.0
    max_cell = min(_longest_cell(n) if max_cell is None else max_cell, n / 2.0)
    # a grid has several cells across the edges it explains: on a small sprite with small,
    # jittered cells the sprite's own outline (two or three "cycles" across it) outweighs the
    # cells' fundamental, so longer periods are no candidates (nor the noise floor's reference)
    span = _active_span(profile)
    if span >= 2.0 * MIN_CELLS_ACROSS * min_cell:
        max_cell = min(max_cell, span / MIN_CELLS_ACROSS)
    if max_cell <= min_cell:
        return 0.0, 0.0
    nfft = _nfft(n)
    spec = _spectrum(profile, nfft)
    lo = int(math.floor(nfft / max_cell))
    hi = int(math.ceil(nfft / min_cell))
    hi = min(hi, len(spec) - 1)
    if hi <= lo + 2:
        return 0.0, 0.0
    band = spec[lo : hi + 1]
    # the strongest *peak* of the band: on a small sprite in a wide flat image the envelope of
    # the edges (one broad bump) rises towards the band's long-period end, whose edge bin is the
    # band's maximum without being a peak of the spectrum
    padded = np.concatenate([[np.inf], spec, [np.inf]])  # a bin at the spectrum's end is no peak
    is_peak = (band >= padded[lo : hi + 1]) & (band >= padded[lo + 2 : hi + 3])
    if not is_peak.any():
        return 0.0, 0.0
    k = int(np.argmax(np.where(is_peak, band, -1.0))) + lo
    peak = spec[k]
    # spectral "noise": median over the band
    noise = float(median(band)) + 1e-9
    best_k = k
    # check coarser candidates (true period = m * apparent period)
    for m in (2, 3, 4):
        kk = k / m
        if kk < lo:
            break
        j0 = max(lo, int(kk) - 2)
        j1 = min(hi, int(kk) + 3)
        sub = spec[j0 : j1 + 1]
        jj = int(np.argmax(sub)) + j0
        if spec[jj] > 0.85 * peak and spec[jj] > 4 * noise:
            best_k = jj
    k = best_k
    # a grid whose cell size drifts across the image splits its peak in two; near-equal
    # twin peaks within 8 % mean "somewhere between", and the DP follows the drift from there
    j0, j1 = max(lo, int(k * 0.92)), min(hi, int(k * 1.08) + 1)
    twins = [j for j in range(j0 + 1, j1) if abs(j - k) > 2 and spec[j] > spec[j - 1] and spec[j] >= spec[j + 1]
             and spec[j] >= 0.85 * spec[k]]
    if twins:
        j = max(twins, key=lambda t: spec[t])
        f = (k * spec[k] + j * spec[j]) / (spec[k] + spec[j]) / nfft
        return 1.0 / f, float(spec[k] / (spec[k] + 6 * noise))
    # parabolic refinement of the peak
    if 1 <= k < len(spec) - 1:
        a, b, c = spec[k - 1], spec[k], spec[k + 1]
        den = a - 2 * b + c
        # a vertex only where the three bins bend down, and within half a bin: a coarser
        # candidate's bin need not be a peak, and a parabola opening upwards (or near flat)
        # put the period thousands of pixels away
        off = min(0.5, max(-0.5, 0.5 * (a - c) / den)) if den < 0 else 0.0
    else:
        off = 0.0
    f = (k + off) / nfft
    if f <= 0:
        return 0.0, 0.0
    f = _refine_frequency(profile, f, 1.0 / nfft)
    strength = float(spec[k] / (spec[k] + 6 * noise))
    return 1.0 / f, strength


def _longest_cell(n: int) -> float:
    """The longest cell (source px) the automatic detector reads on a profile of ``n``
    positions: large images may hold large cells, so at least 8 cells across it are allowed."""
    return max(MAX_CELL, n / 8.0)


def _active_span(profile: np.ndarray) -> float:
    """Length (source px) from the first to the last position with edge evidence."""
    act = np.nonzero(_normalise_evidence(profile) > ACTIVE_EVIDENCE)[0]
    return float(act[-1] - act[0] + 1) if act.size else 0.0


def _windowed(profile: np.ndarray) -> np.ndarray:
    """The profile less its mean, under a Hann window (as the spectrum reads it)."""
    return (profile - profile.mean()) * np.hanning(len(profile))


def _dtft_power(q: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Squared DTFT magnitude of ``q`` at each frequency of ``freqs`` (cycles per px).

    ``q`` is cut into blocks of about sqrt(len) samples: each block's sum is taken with the
    phases of its first sample's offsets, then turned by the block's start. That needs the
    exponential at 2 sqrt(len) phases per frequency instead of a cosine and a sine at every
    sample (a fifth of the time on 1024 samples; the same power to about 1e-13)."""
    n = len(q)
    b = max(1, int(math.ceil(math.sqrt(n))))
    c = -(-n // b)
    w = 2.0 * np.pi * np.asarray(freqs, dtype=np.float64)[:, None]
    blocks = np.zeros(c * b)
    blocks[:n] = q
    within = np.exp(1j * w * np.arange(b)) @ blocks.reshape(c, b).T
    s = (np.exp(1j * w * (b * np.arange(c))) * within).sum(axis=1)
    return s.real**2 + s.imag**2


def _refine_frequency(profile: np.ndarray, f0: float, df: float) -> float:
    """Maximise the windowed DTFT magnitude near ``f0`` (within one FFT bin) by a fine scan."""
    fs = f0 + df * np.linspace(-0.6, 0.6, 13)
    mags = _dtft_power(_windowed(profile), fs)
    i = int(np.argmax(mags))
    if 0 < i < len(fs) - 1:
        a, b, c = mags[i - 1], mags[i], mags[i + 1]
        den = a - 2 * b + c
        if den < 0:
            return float(fs[i] + 0.5 * (a - c) / den * (fs[1] - fs[0]))
    return float(fs[i])


# --------------------------------------------------------------------------- lines (DP)
def _dp_lines(e: np.ndarray, lo: int, hi: int, period: float, *, wide: float = 1.55, weight: float = 4.0,
              local_period: np.ndarray | None = None, with_score: bool = False):
    """Boundaries in [lo, hi] maximising edge evidence minus a gap prior.

    ``e`` is the normalised edge evidence per boundary position (0..~1). The prior is
    ``weight * log(gap / p)^2`` with ``p`` the (local) period; gaps range over
    [0.6 p, wide * p] so jitter, drift and the odd wide cell fit, but a missing line costs.
    The path starts within one period of ``lo`` and ends within one period of ``hi``.

    Every gap is at least ``gmin`` long, so the scores of a block of ``gmin`` consecutive
    positions depend only on earlier blocks: each block is one vectorised step.
    """
    n = hi - lo + 1
    ev = e[lo : hi + 1].astype(np.float64)
    lp = np.full(n, float(period)) if local_period is None else local_period[lo : hi + 1].astype(np.float64)
    gmin = max(1, int(math.floor(0.6 * float(lp.min()))))
    gmax = max(gmin + 1, int(math.ceil(wide * float(lp.max()))))
    gaps = np.arange(gmin, gmax + 1)
    # per-position penalty of each gap; gaps outside that position's own range are forbidden
    pen = weight * np.log(gaps[None, :] / lp[:, None]) ** 2
    own_lo = np.floor(0.6 * lp)[:, None]
    own_hi = np.ceil(wide * lp)[:, None]
    pen[(gaps[None, :] < own_lo) | (gaps[None, :] > own_hi)] = np.inf
    neg = -1e18
    start_win = int(math.ceil(float(lp.max())))
    # scores behind ``gmax`` unreachable positions, so every gap reads a valid index: the loop
    # runs once per block of ``gmin`` positions and its fixed numpy overhead is the cost, so it
    # does the least per block (the back pointers are made from the chosen gaps afterwards)
    padded = np.full(gmax + n, neg)
    # win[p, j] = padded[gmax + p - gaps[j]]: the score before the gap gaps[j] ending at p
    win = np.lib.stride_tricks.sliding_window_view(padded, len(gaps))[:, ::-1]
    chosen = np.empty(n, dtype=np.int64)
    started = np.zeros(n, dtype=bool)
    for s in range(0, n, gmin):
        t = min(s + gmin, n)
        cand = win[s:t] - pen[s:t]
        chosen[s:t] = cand.argmax(axis=1)
        best = cand.max(axis=1)
        if s <= start_win:
            use_start = (np.arange(s, t) <= start_win) & (best < 0.0)
            best[use_start] = 0.0
            started[s:t] = use_start
        padded[gmax + s : gmax + t] = best + ev[s:t]
    score = padded[gmax:]
    # an unreachable position stays within a rounding of -1e18 whatever evidence it adds
    ok = score > neg / 2
    score[~ok] = neg
    back = np.where(ok & ~started, np.arange(n) - gaps[chosen], -1)
    end0 = max(0, n - 1 - start_win)
    k = int(np.argmax(score[end0:])) + end0
    best_score = float(score[k])
    out = []
    while k >= 0:
        out.append(k + lo)
        k = int(back[k])
    lines = np.array(out[::-1], dtype=np.float64)
    return (lines, best_score) if with_score else lines


def _fit_lattice(lines: np.ndarray, period: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Robust least-squares fit ``x = a + p k`` of detected lines to a nominal lattice.

    Each line gets the lattice index nearest to its position; lines more than a third of a
    cell off the fit (a spurious line the DP added) are dropped and the fit repeated.
    Returns (p, a, indices, inlier mask).
    """
    x = np.asarray(lines, dtype=np.float64)
    p = float(period)
    # cumulative indices from the gaps: robust to a period estimate off by a few percent
    steps = np.maximum(0, np.round(np.diff(x) / p))
    k = np.concatenate([[0.0], np.cumsum(steps)])
    keep = np.ones(len(x), bool)
    a = float(median(x - p * k))
    for _ in range(3):
        if keep.sum() < 2 or k[keep].min() == k[keep].max():
            break
        pp, aa = np.polyfit(k[keep], x[keep], 1)
        if not (0.7 * period < pp < 1.3 * period):
            break
        p, a = float(pp), float(aa)
        res = np.abs(x - (a + p * k))
        keep = res < max(p / 3.0, 3.0 * float(median(res)))
    return p, a, k.astype(np.int64), keep


def _complete_lines(lines: np.ndarray, length: int, period: float,
                    spectral_period: float | None = None, fixed: bool = False) -> tuple[np.ndarray, float]:
    """All cell boundaries over the image from the detected ones.

    The detected lines are fitted to a nominal lattice; the border cells are decided on that
    lattice, because a cut cell counts when more than half of its nominal extent is inside
    the image (the detected line of a cut cell is often missing or off by the jitter). The
    lattice slope is the spectral period when that agrees with the lines (it integrates every
    edge of the image and beats a regression over a few jittered lines), else the regression.
    Inside the detected span each nominal line is replaced by the detected line matching it.
    ``fixed``: the slope is ``period`` itself (a cell size the user gave); only the lattice's
    position is fitted. Returns (lines, period).
    """
    x = np.asarray(lines, dtype=np.float64)
    if fixed and len(x):
        p = float(period)
        k = np.round((x - x[0]) / p).astype(np.int64)
        keep = np.ones(len(x), bool)
        a = float(np.mean(x - p * k))
    elif len(x) < 3:
        p = float(spectral_period or period)
        a = float(x[0]) if len(x) else 0.0
        k = np.arange(len(x))
        keep = np.ones(len(x), bool)
    else:
        p, a, k, keep = _fit_lattice(x, period)
        if spectral_period and abs(p - spectral_period) < 0.04 * spectral_period:
            kin, xin = k[keep], x[keep]
            a_s = float(np.mean(xin - spectral_period * kin))
            rms_f = float(np.sqrt(np.mean((xin - a - p * kin) ** 2)))
            se = max(rms_f, 0.5) / max(1e-9, float(np.sqrt(np.sum((kin - kin.mean()) ** 2))))
            if abs(p - spectral_period) <= 3.0 * se:
                p, a = float(spectral_period), a_s

    def model(kk):
        return a + p * np.asarray(kk, dtype=np.float64)

    # nominal lattice indices covering the image
    k_lo = int(math.floor(-a / p)) - 2
    k_hi = int(math.ceil((length - a) / p)) + 2
    kk = np.arange(k_lo, k_hi + 1)
    nominal = np.asarray(model(kk), dtype=np.float64)
    centres = 0.5 * (nominal[:-1] + nominal[1:])
    inside = (centres >= 0) & (centres < length)
    if not inside.any():
        return nominal[:0], p
    i0 = int(np.argmax(inside))
    i1 = len(inside) - int(np.argmax(inside[::-1]))
    kk = kk[i0 : i1 + 1]
    out = nominal[i0 : i1 + 1].copy()
    # detected lines replace their nominal counterparts
    det = dict(zip(k[keep].tolist(), x[keep].tolist()))
    for j, ki in enumerate(kk.tolist()):
        v = det.get(ki)
        if v is not None:
            out[j] = v
    # keep the sequence strictly increasing
    for j in range(1, len(out)):
        if out[j] <= out[j - 1]:
            out[j] = out[j - 1] + 1.0
    return out, p


def _complete_from_dp(lines: np.ndarray, support: np.ndarray, length: int, period: float,
                      spectral_period: float | None) -> tuple[np.ndarray, float]:
    """All cell boundaries over the image from a DP line sequence (one line per cell boundary).

    The DP numbers the cells; lines on real edges (``support``) pin a lattice with one slope
    shared by all segments, where a segment ends at a wide cell (diffusion models draw the
    odd cell ~1.4x wide: a step in the lattice that a single straight fit would smear into
    the period). Margins are extrapolated from the outer segments; a border cell counts
    when more than half of its nominal extent is inside the image.
    """
    x = np.asarray(lines, dtype=np.float64)
    n = len(x)
    k = np.arange(n, dtype=np.float64)
    gaps = np.diff(x)
    wide = gaps > max(1.3 * period, period + 4.0)
    seg = np.concatenate([[0], np.cumsum(wide)])
    nseg = int(seg[-1]) + 1
    ks, xs, ss = k[support], x[support], seg[support]
    # shared slope, one intercept per segment (segments without support borrow a neighbour's)
    num = den = 0.0
    for s in range(nseg):
        m = ss == s
        if m.sum() >= 2:
            kc = ks[m] - ks[m].mean()
            num += float(kc @ (xs[m] - xs[m].mean()))
            den += float(kc @ kc)
    p = num / den if den > 0 else float(period)
    if not (0.8 * period < p < 1.2 * period):
        p = float(period)
    elif spectral_period and den > 0:
        # the spectral period integrates every edge and beats a fit over a few jittered
        # lines, but not a fit over a long run of lines (a drifting grid biases its peak)
        res = []
        for s in range(nseg):
            m = ss == s
            if m.sum() >= 2:
                r = xs[m] - p * ks[m]
                res.append(r - r.mean())
        rms = float(np.sqrt(np.mean(np.concatenate(res) ** 2))) if res else 0.0
        se = max(rms, 0.5) / math.sqrt(den)
        if abs(p - spectral_period) <= 3.0 * se:
            p = float(spectral_period)
    # each margin is continued from the lattice of the lines nearest to it: on a grid that
    # drifts, one lattice through all lines is off by several pixels at the ends
    first = (ss == ss[0]).nonzero()[0][:END_LINES]
    last = (ss == ss[-1]).nonzero()[0][-END_LINES:]
    a_lo = float(np.mean(xs[first] - p * ks[first]))
    a_hi = float(np.mean(xs[last] - p * ks[last]))
    # inside the detected lines each end's lattice at the whole image's cell size decides (its
    # jitter averages out); beyond them each margin continues its own end's lines, position and
    # cell size alike
    if len(ks) >= END_MIN_TOTAL:
        p_lo, p_hi = _end_slope(ks[first], xs[first], p), _end_slope(ks[last], xs[last], p)
    else:
        p_lo = p_hi = p
    k0, k1 = float(ks[0]), float(ks[-1])
    x0 = float(np.mean(xs[first] - p_lo * ks[first])) + p_lo * k0
    x1 = float(np.mean(xs[last] - p_hi * ks[last])) + p_hi * k1

    def nomf(kk) -> np.ndarray:
        """The jitter-free line with lattice index ``kk`` (any real index, margins included)."""
        kk = np.asarray(kk, dtype=np.float64)
        mid = np.where(kk < 0.5 * (n - 1), a_lo + p * kk, a_hi + p * kk)
        return np.where(kk < k0, x0 + p_lo * (kk - k0), np.where(kk > k1, x1 + p_hi * (kk - k1), mid))

    # inside, lines without an edge sit on their segment's lattice
    inter = np.full(nseg, np.nan)
    for s in range(nseg):
        m = ss == s
        if m.any():
            inter[s] = float(np.mean(xs[m] - p * ks[m]))
    # segments without support borrow the nearest supported segment's intercept
    valid = np.nonzero(~np.isnan(inter))[0]
    for s in range(nseg):
        if np.isnan(inter[s]):
            inter[s] = inter[valid[np.argmin(np.abs(valid - s))]]
    nominal_in = inter[seg] + p * k
    nominal_in = np.where((k < ks[0]) | (k > ks[-1]), nomf(k), nominal_in)
    out_in = np.where(support, x, nominal_in)
    k_left = int(math.ceil(max(0.0, float(nomf(0))) / p_lo)) + 2
    left = nomf(np.arange(-k_left, 0))
    k_right = int(math.ceil((length - float(nomf(n - 1))) / p_hi)) + 2
    right = nomf(np.arange(n, n + max(0, k_right)))
    allv = np.concatenate([left, out_in, right])
    for j in range(1, len(allv)):
        if allv[j] <= allv[j - 1]:
            allv[j] = allv[j - 1] + 1.0
    # border decision on the jitter-free lattice of each end
    kall = np.arange(-k_left, n + max(0, k_right), dtype=np.float64)
    nom = nomf(kall)
    centres = 0.5 * (nom[:-1] + nom[1:])
    inside = (centres >= 0) & (centres < length)
    if not inside.any():
        return allv[:0], p
    i0 = int(np.argmax(inside))
    i1 = len(inside) - int(np.argmax(inside[::-1]))
    if SIZE_PRIOR_MULTIPLE:
        first_det = len(left) + int(np.argmax(support))
        last_det = len(left) + n - 1 - int(np.argmax(support[::-1]))
        i0, i1 = _size_prior(nom, i0, i1, length, first_det, last_det)
    return allv[i0 : i1 + 1], p


def _end_slope(k: np.ndarray, x: np.ndarray, p: float) -> float:
    """The cell size (px) at one end of the lines: the least-squares slope of ``x`` (line
    positions, px) over ``k`` (their lattice indices), or the whole image's ``p`` when there
    are too few lines or the slope is more than END_SLOPE_MAX off it."""
    if len(k) < END_MIN_LINES:
        return p
    kc = k - k.mean()
    den = float(kc @ kc)
    if den <= 0:
        return p
    local = float(kc @ (x - x.mean())) / den
    return local if abs(local - p) < END_SLOPE_MAX * p else p


def _border_doubt(nom: np.ndarray, j: int, border: float, margin_cells: int) -> float:
    """How far (0..0.5) the straddling cell at line ``j`` is from the half-inside rule, minus
    the doubt that extrapolating ``margin_cells`` cells over flat background adds."""
    cell = float(nom[j + 1] - nom[j])
    q = (nom[j + 1] - border) / cell if border <= nom[j + 1] else 0.0
    return abs(float(q) - 0.5) - MARGIN_DOUBT * margin_cells


def _size_prior(nom: np.ndarray, i0: int, i1: int, length: int, first_det: int, last_det: int) -> tuple[int, int]:
    """Tie-break uncertain border cells towards a sprite size that is a multiple of 8.

    The half-inside rule decides each border cell; when the straddling cell is close to half
    inside (or its position was extrapolated over many flat background cells), the decision
    is a coin flip, and sprites are far more often 16, 24, 32, 48, 64... pixels than not:
    only then does a flip that reaches such a size win.
    """
    count = i1 - i0
    if count % SIZE_PRIOR_MULTIPLE == 0 or count < SIZE_PRIOR_MULTIPLE:
        return i0, i1
    options = []
    # left border: the straddling cell is i0 (kept) or i0 - 1 (dropped)
    jl = i0 if nom[i0] < 0 else i0 - 1
    if 0 <= jl < len(nom) - 1:
        doubt = _border_doubt(nom, jl, 0.0, max(0, first_det - jl))
        if doubt < SIZE_PRIOR_DOUBT:
            options.append((doubt, (jl + 1, i1) if jl == i0 else (jl, i1)))
    # right border: the straddling cell is i1 - 1 (kept) or i1 (dropped)
    jr = i1 - 1 if nom[i1] > length else i1
    if 0 <= jr < len(nom) - 1:
        doubt = _border_doubt(nom, jr, float(length), max(0, jr - last_det))
        if doubt < SIZE_PRIOR_DOUBT:
            options.append((doubt, (i0, jr) if jr == i1 - 1 else (i0, jr + 1)))
    if len(options) == 2:
        # both borders in doubt: flipping both is a third option (the least sure pair last)
        (d1, (a1, _)), (d2, (_, b2)) = options
        options.append((max(d1, d2) + 1.0, (a1, b2)))
    for _, (a, b) in sorted(options):
        if (b - a) % SIZE_PRIOR_MULTIPLE == 0 and b > a:
            return a, b
    return i0, i1


def _normalise_evidence(p: np.ndarray) -> np.ndarray:
    pos = p[p > 0]
    if pos.size == 0:
        return p * 0.0
    ref = float(quantile(pos, 90))
    if ref <= 0:
        ref = float(pos.max())
    return np.minimum(p / ref, EVIDENCE_CAP)


def _on_crests(ev: np.ndarray, raw: np.ndarray, width: float = CREST_WIDTH) -> np.ndarray:
    """Evidence ``ev`` (capped at ``EVIDENCE_CAP``) with each capped edge peaked at its crest.

    The cap keeps a few strong outlines from drowning the weak edges, but a strong blurred
    edge (a sprite against its background) then reads as a plateau 6-7 px wide on which the
    line DP places two lines a cell apart: a spurious cell on the silhouette. The uncapped
    profile ``raw`` still peaks at the edge's centre; over the whole edge (the capped run and
    its flanks down to where ``raw`` stops falling) the evidence is held under a Gaussian of
    ``width`` source px around that crest, so one edge holds one line.
    """
    capped = ev >= EVIDENCE_CAP
    if not capped.any():
        return ev
    out = ev.copy()
    n = len(ev)
    edges = np.diff(np.concatenate([[0], capped.view(np.int8), [0]]))
    for s0, s1 in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        run = raw[s0:s1]
        # the centre of the run's maxima: a clean edge the span-3 difference saturates is flat
        top = np.nonzero(run >= run.max())[0]
        c = s0 + 0.5 * (top[0] + top[-1])
        lo, hi = s0, s1
        while lo > 0 and 0 < raw[lo - 1] < raw[lo]:
            lo -= 1
        while hi < n and 0 < raw[hi] < raw[hi - 1]:
            hi += 1
        d = np.arange(lo, hi) - c
        out[lo:hi] = np.minimum(out[lo:hi], EVIDENCE_CAP * np.exp(-0.5 * (d / width) ** 2))
    return out


def _axis_profile(e: np.ndarray, axis: int, *, ridges: bool = False) -> np.ndarray:
    """Edge evidence per boundary position of one axis (JPEG blocks and baseline removed);
    with ``ridges`` only the crests of the edges count (see :func:`_ridge_profile`)."""
    prof = _ridge_profile(e, axis) if ridges else _profile(e, axis)
    prof = _remove_jpeg_blocks(prof)
    sm = _smooth(prof, 0.8)
    # noise that survives the per-pixel floor adds a flat baseline over every row; remove it
    # so flat background reads as "no evidence" rather than "weak evidence everywhere"
    return np.clip(sm - float(quantile(sm, 20)), 0.0, None)


def _square_hint(sx: np.ndarray, sy: np.ndarray, est_x: tuple[float, float] | None = None,
                 est_y: tuple[float, float] | None = None) -> float | None:
    """A common period when the two axes disagree wildly, else None.

    Pseudo pixels are (nearly) square. When the per-axis spectral peaks differ by more than
    25 %, one axis has locked onto content (a repeating texture, a period of several
    cells); the period both spectra support best (the larger of the two normalised minima)
    is then taken for both axes, provided each axis shows at least half its peak there.
    """
    px, _ = est_x or estimate_period(sx)
    py, _ = est_y or estimate_period(sy)
    if px <= 0 or py <= 0 or max(px, py) / min(px, py) < 1.25:
        return None
    cands = np.arange(MIN_CELL, min(MAX_CELL, len(sx) / 4.0, len(sy) / 4.0), 0.02)
    if len(cands) < 2:
        return None

    def norm_spec(s):
        nfft = _nfft(len(s))
        spec = _spectrum(s, nfft)
        lo, hi = int(nfft / MAX_CELL), min(len(spec) - 1, int(nfft / MIN_CELL))
        top = float(spec[lo : hi + 1].max()) or 1.0
        return np.interp(nfft / cands, np.arange(len(spec)), spec) / top

    joint = np.minimum(norm_spec(sx), norm_spec(sy))
    i = int(np.argmax(joint))
    if joint[i] < 0.5:
        return None
    # a lattice of period 2p puts energy at p too (its second harmonic), one of period p none
    # at 2p: a near tie between p and 2p goes to 2p
    near2 = (cands > 1.9 * cands[i]) & (cands < 2.1 * cands[i])
    if near2.any():
        j = int(np.argmax(np.where(near2, joint, -1.0)))
        if joint[j] >= SUBHARMONIC_TIE * joint[i]:
            return float(cands[j])
    return float(cands[i])


def _nearly_square(profile: np.ndarray, est: tuple[float, float], other: float) -> tuple[float, float]:
    """The period estimate ``est`` of the axis with the weaker spectrum (``profile``), or the
    peak of that spectrum nearest to the other axis's period ``other`` when that peak is
    nearly as strong (SQUARE_TIE of the strongest within 10 % of ``other``).

    Pseudo pixels are nearly square. A short axis (a band of 32 jittered rows) has a broad,
    ragged spectrum whose highest bump can sit 7 % off its true period while a bump nearly
    as high sits at the square cell; the tie goes to the square cell. A clearly stronger
    peak keeps its own period: cells 3-10 % non-square stay so.
    """
    p0 = est[0]
    if abs(math.log(p0 / other)) < 0.01:
        return est
    nfft = _nfft(len(profile))
    spec = _spectrum(profile, nfft)
    per = other * np.exp(np.linspace(-0.1, 0.1, 401))
    pw = np.interp(nfft / per, np.arange(len(spec)), spec)
    peaks = np.nonzero((pw[1:-1] >= pw[:-2]) & (pw[1:-1] >= pw[2:]))[0] + 1
    near = peaks[pw[peaks] >= SQUARE_TIE * float(pw.max())]
    if near.size == 0:
        return est
    best = float(per[near[int(np.argmin(np.abs(np.log(per[near] / other))))]])
    if abs(math.log(best / p0)) < 0.01:
        return est
    return best, est[1]


def _consistent_estimates(nx: np.ndarray, ny: np.ndarray, sx: np.ndarray, sy: np.ndarray):
    """The period estimate of each axis, with the profile it was read from.

    The ridge profiles (edge crests) keep small jittered cells a lattice, but on some art
    their strongest peak is a content period (a motif a few cells wide) that the full edge
    profile does not favour. Pseudo pixels are nearly square, so when the ridge estimates of
    the two axes disagree, the pairing of ridge and full-profile estimates whose periods agree
    within ``SQUARE_TOLERANCE`` is taken, the strongest pair first. Returns
    ``((est_x, profile_x), (est_y, profile_y))`` with ``est`` as from :func:`estimate_period`.
    """
    rx, ry = _profile_period(nx), _profile_period(ny)
    if _agree(rx[0], ry[0]):
        return (rx, nx), (ry, ny)
    fx, fy = _profile_period(sx), _profile_period(sy)
    pairs = [((a, pa), (b, pb)) for a, pa in ((rx, nx), (fx, sx)) for b, pb in ((ry, ny), (fy, sy))
             if _agree(a[0], b[0])]
    if not pairs:
        return (rx, nx), (ry, ny)
    return max(pairs, key=lambda pr: pr[0][0][1] * pr[1][0][1])


def _profile_period(profile: np.ndarray) -> tuple[float, float]:
    """:func:`estimate_period` of ``profile``, read from this detection's memo when an earlier
    step of it already estimated the same profile."""
    return _memo(("period", profile.tobytes()), lambda: estimate_period(profile))


def _agree(p: float, q: float) -> bool:
    return p > 0 and q > 0 and max(p, q) / min(p, q) <= SQUARE_TOLERANCE


def _detect_axis(e: np.ndarray, axis: int, length: int, *, cell: float | None, count: int | None,
                 sm: np.ndarray | None = None, hint: float | None = None, spec: np.ndarray | None = None,
                 est: tuple[float, float] | None = None) -> _Axis:
    """Find the lines of one axis from the edge map ``e`` (summed along ``axis``).

    ``hint`` (source px) replaces the spectral period estimate by the spectral peak within
    8 % of it (see :func:`_square_hint`). ``spec`` is the profile the period is read from
    (default ``sm``), ``est`` its :func:`estimate_period` when already known.
    """
    if sm is None:
        sm = _axis_profile(e, axis)
    if spec is None:
        spec = sm
    if est is None and count is None and cell is None:
        est = estimate_period(spec)
    if count is not None:
        period = length / float(count)
        strength = 1.0
    elif cell is not None:
        period = float(cell)
        strength = 1.0
    elif hint is not None:
        # the confidence still comes from the whole spectrum (the narrow band has no floor)
        _, strength = est
        period, _ = estimate_period(spec, 0.92 * hint, 1.08 * hint)
        if period <= 0:
            period, strength = est
    else:
        period, strength = est
        if period <= 0:
            raise NoGridFoundError("no pixel grid found: the image has no regular edges")
    if spec is not sm and count is None and cell is None:
        # the ridge profile is noisier in flat areas; the confidence of the grid is the
        # stronger of the two readings
        strength = max(strength, estimate_period(sm)[1])
    spectral_p = period if (count is None and cell is None) else None
    ev = _on_crests(_normalise_evidence(sm), sm)
    if period < 3.0:
        # tiny cells: a regular lattice from the spectrum phase, no DP
        return _lattice_from_phase(sm, length, period, strength, count)
    active = np.nonzero(ev > ACTIVE_EVIDENCE)[0]
    if active.size == 0:
        return _lattice_from_phase(sm, length, period, strength, count)
    lo, hi = int(active[0]), int(active[-1])
    if hi - lo < 2 * period:
        return _lattice_from_phase(sm, length, period, strength, count)
    given = float(cell) if cell is not None else None
    # A line search run at a period its own lines do not fit (a square hint or a motif's peak
    # 12 % off the cells) packs too few lines into the art and lets the flat margins make up
    # the count: the art comes out a cell or two off in its middle. The lines on edges still
    # fit the cells' size, so one more search runs at the size they fit (see REFOLLOW).
    for attempt in range(2):
        lines, period, _ = _follow_lines(ev, lo, hi, period)
        searched = period
        lines = _drop_split_lines(lines, ev, period)
        # only lines that sit on real edges pin the lattice; the DP's lines across flat areas are
        # interpolations and would bias the fitted period
        support = _evidence_at(ev, lines) >= ON_EDGE
        if support.sum() >= 6:
            lines, support = _recount_flat_stretches(lines, support, period)
        if spectral_p:
            lines, support = _fix_slips(lines, support, spectral_p)
        if support.sum() >= 3 and len(lines) >= 6:
            full, period = _complete_from_dp(lines, support, length, period, spectral_p)
        else:
            if support.sum() >= 3:
                lines = lines[support]
            full, period = _complete_lines(lines, length, period, spectral_p)
        if attempt or spectral_p is None or abs(period / searched - 1.0) <= REFOLLOW:
            break
        spectral_p = period
    if count is not None and len(full) - 1 != count:
        full = _force_count(full, lines, length, count)
    if given is not None and abs(period / given - 1.0) > CELL_GIVEN_SLACK:
        # A cell size given is the user's say: the edges may move it by the jitter of a
        # drawn grid, not to another size (a cell of 12 came back as 9.5). The lines are
        # then placed on the edges at that period, only the lattice's position fitted.
        lines, _, _ = _follow_lines(ev, lo, hi, given, fixed=True)
        on = _evidence_at(ev, lines) >= ON_EDGE
        full, period = _complete_lines(lines[on] if on.sum() >= 2 else lines, length, given, fixed=True)
    return _Axis(lines=full, period=period, confidence=strength)


def _unpack_dense_lines(found: _Axis, args) -> _Axis:
    """``found``, or the same axis with its lines read on the edges' crests when ``found``'s
    lines came out packed more densely than the spectral period.

    Pixel art upscaled by a resampling filter (bicubic, Lanczos) rings: every edge has
    overshoot lobes about half a cell away, and with no noise floor to hide them the full
    edge profile is broad humps. The line search, paid per line, then packs lines closer than
    the period (a Lanczos-upscaled sprite came back with 5-10 % too many cells). The crests
    of the edges (the ridge profile the period is read from) keep the lobes below the edge
    they ring around. Only when the first lines are more than ``DENSE_LINES`` denser than
    the spectral period is the axis read again, and the crest lines are kept only when their
    period agrees with the spectrum within ``CREST_AGREE``, and better than the first lines.
    ``args``: (edge map, axis, length, ridge profile, spectral estimate, hint or None).
    """
    e, axis, length, ridges, est, hint = args
    p0 = est[0] if hint is None else hint
    if p0 <= 0 or found.period >= (1.0 - DENSE_LINES) * p0:
        return found
    try:
        crest = _detect_axis(e, axis, length, cell=None, count=None, sm=ridges, hint=hint, spec=ridges, est=est)
    except NoGridFoundError:
        return found
    off = abs(crest.period / p0 - 1.0)
    if off < CREST_AGREE and off < abs(found.period / p0 - 1.0):
        return _Axis(lines=crest.lines, period=crest.period, confidence=found.confidence)
    return found


def _follow_lines(ev: np.ndarray, lo: int, hi: int, period: float,
                  fixed: bool = False) -> tuple[np.ndarray, float, float]:
    """DP lines for a start ``period`` (source px), then again following the local period of
    the first lines (drifting grids), unless the period is ``fixed``. Returns (lines, refined
    period, DP score)."""
    lines, score = _dp_lines_fine(ev, lo, hi, period)
    if len(lines) >= 6 and not fixed:
        gaps = np.diff(lines)
        med = float(median(gaps))
        # only lines on real edges measure the period: the DP's lines across flat stretches
        # merely repeat the start period, or lose a cell there and drag the fit with them
        on_edge = _evidence_at(ev, lines) >= ON_EDGE
        fit_on = lines[on_edge] if on_edge.sum() >= 6 else lines
        p_fit, _, _, _ = _fit_lattice(fit_on, med)
        period = p_fit if abs(p_fit - period) / period < 0.15 else med
        lp = _local_period(lines, len(ev), period)
        lines, score = _dp_lines_fine(ev, lo, hi, period, local_period=lp)
    return lines, period, score


def _dp_lines_fine(ev: np.ndarray, lo: int, hi: int, period: float,
                   local_period: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """:func:`_dp_lines` (lines and score) for a ``period`` in source px; cells under
    ``SUBPIXEL_CELL`` px are searched on positions a ``SUBPIXEL_STEPS``-th of the period apart,
    each pixel's evidence at the position nearest it and none between.

    On whole pixels every gap is a whole number of px, and the gap prior costs least per px at
    the whole gap nearest the period: across a flat stretch the search lays cells of 3.67 px
    4 px apart, 8 % too few (a scene of sprites on a flat backdrop lost 18 of 228 columns that
    way); on a fixed finer step (a quarter px) still 2 %. On steps that divide the period the
    stretch's cells take their own size. A line on a pixel's evidence is returned at that
    whole pixel. From 6 px up the lattice checks that follow (:func:`_recount_flat_stretches`,
    :func:`_fix_slips`) hold the count, and the finer search applied up to 12 px moved two
    snap-dev cases to a wrong count.
    """
    if period >= SUBPIXEL_CELL:
        return _dp_lines(ev, lo, hi, period, local_period=local_period, with_score=True)
    step = float(period) / SUBPIXEL_STEPS  # under half a pixel: every pixel has a position of its own
    n = len(ev)
    at = np.rint(np.arange(n) / step).astype(np.intp)
    fine = np.zeros(int(at[-1]) + 1)
    fine[at] = ev
    pos = np.arange(len(fine)) * step
    pos[at] = np.arange(n)
    lp = None if local_period is None else np.interp(pos, np.arange(n), local_period) / step
    lines, score = _dp_lines(fine, int(at[lo]), int(at[hi]), SUBPIXEL_STEPS, local_period=lp, with_score=True)
    return pos[lines.astype(np.intp)], score


def _drop_split_lines(lines: np.ndarray, ev: np.ndarray, period: float) -> np.ndarray:
    """Decide, for each edgeless DP line inside a gap of at most 2 periods, whether the gap is
    one wide cell (drop the line) or two cells (keep it).

    Diffusion models draw the odd cell ~1.4x wide, which the gap prior prefers to cut in two;
    but two same-coloured cells of a jittered grid look the same locally. The lattice tells
    them apart: the lines on either side, each read as a local lattice, meet across the gap
    after ~1.4 periods for a wide cell and ~2 for two cells. Where either side has too few
    lines on edges for that, or the lattices do not tell, the line goes only when both halves
    are short.
    """
    if len(lines) < 3:
        return lines
    x = [float(v) for v in lines]
    edge = _evidence_at(ev, lines).tolist()
    # lines on edges are never dropped, so the lattices that decide every gap come from them
    pinned = np.asarray([v for v, e in zip(x, edge) if e >= ON_EDGE])
    i = 1
    while i < len(x) - 1:
        gl, gr = x[i] - x[i - 1], x[i + 1] - x[i]
        if edge[i] < 0.1 and gl + gr <= 2.0 * period:
            cells = _cells_across(pinned, x[i - 1], x[i + 1], period)
            if cells == 1 or (cells is None and gl < 0.9 * period and gr < 0.9 * period):
                del x[i], edge[i]
                continue
        i += 1
    return np.asarray(x, dtype=np.float64)


def _cells_across(pinned: np.ndarray, a: float, b: float, period: float, reach: float = REACH) -> int | None:
    """1 or 2: the cells between lines ``a`` and ``b``, from the lattices of the lines on edges
    (``pinned``, increasing) within ``reach`` periods at each side, up to 10 a side; None when a
    side has fewer than 3 such lines, its nearest is more than ``SIDE_NEAR`` periods from the
    gap, or they do not form a lattice."""
    lo, hi = np.searchsorted(pinned, [a - reach * period, b], side="left")
    left = pinned[lo : np.searchsorted(pinned, a, side="right")][::-1][:10]
    right = pinned[hi : np.searchsorted(pinned, b + reach * period, side="right")][:10]
    if len(left) < 3 or len(right) < 3:
        return None
    if a - left[0] > SIDE_NEAR * period or right[0] - b > SIDE_NEAR * period:
        # carried across a flat stretch, a side's few jittered lines place the gap's end no
        # better than a cell (four lines 13.7 px apart on a 12.8 px grid, 7 cells away)
        return None
    # indices in cells from each side's end of the gap; within a side the DP's gaps are cells.
    # Each side gets its own slope: real grids drift, and one shared slope carried across the
    # gap shifts both ends.
    ends, slopes, res = [], [], []
    for k, xs in ((-np.round((a - left) / period), left), (np.round((right - b) / period), right)):
        kc = k - k.mean()
        den = float(kc @ kc)
        p = float(kc @ (xs - xs.mean())) / den if den > 0 else period
        if not 0.8 * period < p < 1.2 * period:
            p = period
        at = float(np.mean(xs - p * k))  # the side's lattice at its end of the gap (k = 0)
        ends.append(at)
        slopes.append(p)
        res.append(xs - (at + p * k))
    p = 0.5 * (slopes[0] + slopes[1])
    if float(np.sqrt(np.mean(np.concatenate(res) ** 2))) > 0.25 * p:
        return None
    at_l, at_r = ends
    # wide cells are drawn 1.35-1.5x; between that and two cells the lattices do not decide
    span = (at_r - at_l) / p
    return 1 if span < SPAN_WIDE else 2 if span >= SPAN_TWO else None


def _recount_flat_stretches(lines: np.ndarray, support: np.ndarray, period: float,
                            reach: float = 6.0, max_cells: int = 4, sure: float = 0.15):
    """The DP lines with the cells between neighbouring lines on edges (``support``) recounted
    on the lattice; returns (lines, support).

    With +-2 px jitter on 6-7 px cells two neighbouring lines can lie 1.7 periods apart, and
    the DP (paid per line) or the split test then miscounts the stretch between them; but
    the phase of several lines together is off by far less than any one of them. So each
    end of a stretch is snapped to the lattice of the lines on edges within ``reach`` periods
    on its own side (:func:`_side_phases`; a wide cell shifts the lattice between the sides).
    Both sides must hold a lattice: one side's lattice carried across the stretch is off by a
    quarter cell after four cells of a drifting grid. A stretch of up to ``max_cells`` cells
    whose snapped length is within ``sure`` of a whole number of periods other than the DP's
    count gets that many cells, its lines spaced evenly. A wide cell (1.35-1.5 periods) is
    not within ``sure`` of a whole number and stays as the DP drew it.
    """
    x = np.asarray(lines, dtype=np.float64)
    on = np.nonzero(support)[0]
    xs = x[on]
    before, after = _side_phases(xs, period, reach, -1), _side_phases(xs, period, reach, +1)
    pa, pb = before[:-1], after[1:]

    def snap(v, ph):
        return ph + period * np.round((v - ph) / period)

    with np.errstate(invalid="ignore"):
        span = (snap(xs[1:], pb) - snap(xs[:-1], pa)) / period
    known = ~np.isnan(span)
    c = np.round(np.where(known, span, -1.0)).astype(np.int64)
    fix = known & (c >= 1) & (c <= max_cells) & (c != np.diff(on)) & (np.abs(span - c) < sure)
    if not fix.any():
        return x, support
    out, keep = [x[: on[0]]], [support[: on[0]]]
    for t, (a, b) in enumerate(zip(on[:-1], on[1:])):
        if fix[t]:
            out.append(x[a] + (x[b] - x[a]) * np.arange(c[t]) / c[t])
            keep.append(np.arange(c[t]) == 0)
        else:
            out.append(x[a:b])
            keep.append(support[a:b])
    out.append(x[on[-1]:])
    keep.append(support[on[-1]:])
    return np.concatenate(out), np.concatenate(keep)


def _fix_slips(lines: np.ndarray, support: np.ndarray, ps: float) -> tuple[np.ndarray, np.ndarray]:
    """The DP lines with whole-cell slips of their numbering undone; returns (lines, support).

    With +-2 px jitter on 6-7 px cells one cell can be drawn 11 px wide, and the stretch
    between the lines on edges around it (1.7 periods) is then counted as two cells, on the
    lattice of either side too (:func:`_recount_flat_stretches` leaves it). Over a long run of
    lines the spectral period ``ps`` is far surer than any one stretch: numbered by the DP,
    the lines on edges sit on its lattice up to one whole period that the lines after a slip
    are off by. That step is looked for where it splits the lines' offsets from the lattice
    best; it is undone (the stretch across it gets one cell fewer or more, its lines spaced
    evenly) when it is one period within SLIP_TOL, SLIP_SIDE lines on edges a side hold it,
    they sit on their sides' lattices within SLIP_FIT periods rms, it explains the offsets
    better than a straight trend by SLIP_GAIN variances, and neither side trends (by
    SLIP_TREND variances: a spectral period that is off, or a grid that drifts, makes a
    ramp, not a step). At most SLIP_ROUNDS slips are undone.
    """
    x = np.asarray(lines, dtype=np.float64).copy()
    sup = np.asarray(support, bool).copy()
    for _ in range(SLIP_ROUNDS):
        on = np.nonzero(sup)[0]
        n = len(on)
        if n < 2 * SLIP_SIDE:
            break
        ks = on.astype(np.float64)
        r = x[on] - ps * ks
        cs, cs2 = np.cumsum(r), np.cumsum(r * r)
        j = np.arange(SLIP_SIDE - 1, n - SLIP_SIDE)
        nl = j + 1.0
        nr = n - nl
        ml = cs[j] / nl
        mr = (cs[-1] - cs[j]) / nr
        rss1 = (cs2[j] - nl * ml ** 2) + (cs2[-1] - cs2[j] - nr * mr ** 2)
        b = int(np.argmin(rss1))
        step = float(mr[b] - ml[b])
        var1 = max(float(rss1[b]) / max(1, n - 2), 0.25)
        kc = ks - ks.mean()
        slope = float(kc @ (r - r.mean())) / float(kc @ kc)
        rss_trend = float(((r - r.mean() - slope * kc) ** 2).sum())
        # each side must sit on the spectral lattice: a trend within the sides means the
        # spectral period is off (or the grid drifts), and its "step" is no slip
        side = np.arange(n) > j[b]
        rs, kk = r.copy(), ks.copy()
        for m in (side, ~side):
            rs[m] -= rs[m].mean()
            kk[m] -= kk[m].mean()
        within = float(kk @ rs) / float(kk @ kk)
        rss2 = float(((rs - within * kk) ** 2).sum())
        var2 = max(rss2 / max(1, n - 3), 0.25)
        if not (abs(abs(step) / ps - 1.0) < SLIP_TOL and math.sqrt(var1) < SLIP_FIT * ps
                and rss_trend - float(rss1[b]) > SLIP_GAIN * var1
                and float(rss1[b]) - rss2 < SLIP_TREND * var2):
            break
        a, c = int(on[j[b]]), int(on[j[b] + 1])
        cells = c - a + (1 if step > 0 else -1)
        if cells < 1:
            break
        inner = x[a] + (x[c] - x[a]) * np.arange(1, cells) / cells
        x = np.concatenate([x[: a + 1], inner, x[c:]])
        sup = np.concatenate([sup[: a + 1], np.zeros(cells - 1, bool), sup[c:]])
    return x, sup


def _side_phases(xs: np.ndarray, period: float, reach: float, direction: int) -> np.ndarray:
    """For each line of ``xs`` (increasing), the phase (source px) of the lattice of period
    ``period`` through it and the lines within ``reach`` periods before it (``direction`` -1)
    or after it (+1); NaN where there are fewer than 3 lines or they sit on no lattice (rms
    off it over a quarter period). The phase is the lines' circular mean, not one jittered
    line's position; the slope is the axis's period, as a fit over a few jittered lines is
    off by 5 %."""
    n = len(xs)
    m = int(math.ceil(reach / 0.6)) + 1  # DP gaps are at least 0.6 periods
    idx = np.arange(n)[:, None] + direction * np.arange(m)[None, :]
    valid = (idx >= 0) & (idx < n)
    v = xs[np.clip(idx, 0, n - 1)]
    valid &= np.abs(v - xs[:, None]) <= reach * period
    w = valid.astype(np.float64)
    cnt = w.sum(axis=1)
    ph = np.angle((w * np.exp(2j * np.pi * v / period)).sum(axis=1)) / (2.0 * np.pi) * period
    off = (v - ph[:, None]) / period
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt((w * (off - np.round(off)) ** 2).sum(axis=1) / cnt)
    return np.where((cnt >= 3) & (rms <= 0.25), ph, np.nan)


def _evidence_at(ev: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The normalised edge evidence at each line position (clipped to the profile)."""
    return ev[np.clip(np.asarray(lines).astype(np.intp), 0, len(ev) - 1)]


def _local_period(lines: np.ndarray, n: int, period: float) -> np.ndarray:
    """Per-position period from a smoothed gap sequence (for drifting grids)."""
    gaps = np.diff(lines)
    mids = 0.5 * (lines[:-1] + lines[1:])
    # robust smoothing: running median over 7 gaps, then clip to +-12 % of the global period
    k = 7
    if len(gaps) >= k:
        pad = np.pad(gaps, (k // 2, k // 2), mode="edge")
        win = np.lib.stride_tricks.sliding_window_view(pad, k)
        sm = median(win, axis=1)
        # a second pass with a mean smooths the integer steps
        sm = np.convolve(np.pad(sm, (2, 2), mode="edge"), np.ones(5) / 5, mode="valid")
    else:
        sm = np.full(len(gaps), period)
    sm = np.clip(sm, 0.88 * period, 1.12 * period)
    lp = np.interp(np.arange(n), mids, sm)
    return lp


def _force_count(full: np.ndarray, lines: np.ndarray, length: int, count: int) -> np.ndarray:
    """Fall back to a uniform lattice with exactly ``count`` cells over the image."""
    p = length / float(count)
    return np.arange(count + 1, dtype=np.float64) * p


def _lattice_from_phase(sm: np.ndarray, length: int, period: float, strength: float, count: int | None) -> _Axis:
    n = len(sm)
    x = np.arange(n)
    z = np.sum(sm * np.exp(-2j * np.pi * x / period))
    phase = (-np.angle(z) / (2 * np.pi)) * period % period
    k0 = -math.ceil(phase / period) - 1
    lines = phase + period * np.arange(k0, k0 + int(length / period) + 4)
    centres = 0.5 * (lines[:-1] + lines[1:])
    keep = (centres >= 0) & (centres < length)
    i0 = int(np.argmax(keep))
    i1 = len(keep) - int(np.argmax(keep[::-1]))
    full = lines[i0 : i1 + 1]
    if count is not None and len(full) - 1 != count:
        full = np.arange(count + 1, dtype=np.float64) * (length / float(count))
    return _Axis(lines=full, period=period, confidence=strength)


# --------------------------------------------------------------------------- public API
def _validate(rgba: np.ndarray, source: str) -> np.ndarray:
    a = as_rgba(rgba, source=source)
    h, w = a.shape[:2]
    if h < 2 or w < 2:
        raise InputImageError(f"{source} is {w}x{h}; grid snap needs at least 2x2 pixels",
                              hint="pass an RGB or RGBA image of at least 2x2 pixels")
    return a


def _check_pos(name: str, v, kind=float):
    if v is None:
        return None
    try:
        f = kind(v)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name} must be a number, got {v!r}") from exc
    if not (f > 0) or not math.isfinite(f):
        raise InvalidArgumentError(f"{name} must be > 0, got {v!r}")
    return f


def _checked_overrides(w: int, h: int, cell, cell_w, cell_h, width, height) -> tuple:
    """(cell_w, cell_h, width, height) of the overrides for a ``w`` x ``h`` image, each None or
    checked: ``cell_w`` / ``cell_h`` default to ``cell``; cells of 1 source px up to the image's
    side, sizes up to the image's."""
    cw = _check_pos("cell_w", cell_w if cell_w is not None else cell)
    ch = _check_pos("cell_h", cell_h if cell_h is not None else cell)
    tw = _check_pos("width", width, int)
    th = _check_pos("height", height, int)
    if tw is not None and tw > w:
        raise InvalidArgumentError(f"width {tw} is larger than the image width {w}")
    if th is not None and th > h:
        raise InvalidArgumentError(f"height {th} is larger than the image height {h}")
    for name, c, n in (("cell_w", cw, w), ("cell_h", ch, h)):
        if c is not None and c > n:
            raise InvalidArgumentError(f"{name} {c} is larger than the image ({n} px)")
        if c is not None and c < 1.0:
            # a cell under one source pixel would draw each source pixel as several art pixels
            raise InvalidArgumentError(f"{name} {c} is under one source pixel",
                                       hint="a cell is at least 1 source pixel; a cell of 1 keeps the image's own pixels")
    # one side of the size given: pixel art's cells are square, so the other side's cell
    # follows; read on its own, that side may be read at another scale (46 given columns over
    # the 24 automatic rows of a 23x24 sprite draw every pixel 2:1)
    if tw is not None and th is None and ch is None:
        ch = w / tw
    if th is not None and tw is None and cw is None:
        cw = h / th
    return cw, ch, tw, th


def detect_grid(
    rgba: np.ndarray,
    *,
    cell: float | None = None,
    cell_w: float | None = None,
    cell_h: float | None = None,
    width: int | None = None,
    height: int | None = None,
    source: str = "image",
) -> Grid:
    """Detect the pseudo-pixel grid of an (H, W, 3|4) image.

    Overrides: ``cell`` (source px per true pixel, both axes) or ``cell_w``/``cell_h``
    (floats, source px, from 1 up to the image's side); or ``width``/``height`` (true pixels,
    up to the image's): then only the line positions are fitted. A bad override is an
    ``InvalidArgumentError`` naming it. Raises ``NoGridFoundError`` when no regular grid is present.
    """
    a = _detection_view(_validate(rgba, source))
    h, w = a.shape[:2]
    return _detect([a], _checked_overrides(w, h, cell, cell_w, cell_h, width, height), source)


def _detect(views: list[np.ndarray], overrides: tuple, source: str) -> Grid:
    """The grid one or more frames share, read from their detection views (one size) with the
    checked ``overrides`` (cell_w, cell_h, width, height; None where not given). In automatic
    mode exact enlargements are read first (and looked inside); a tiny image is a sprite; a
    few-colour image is read through a blur (:func:`_softened`); a grid of an enlargement's
    own pixels is looked inside; and when no grid is found, crisp frames and small few-colour
    ones are taken as at their true resolution (:func:`_looks_true_resolution`)."""
    h, w = views[0].shape[:2]
    cw, ch, tw, th = overrides
    auto = cw is None and ch is None and tw is None and th is None
    if auto:
        exact = _exact_block_grid(views)
        if exact is not None:
            return _inside_blocks(views, exact, source)
        # every frame on the one lattice: frames drawn out of phase would sum to a lattice of
        # half their cell, which the edge statistics (frame_grids) tell apart
        exact = _exact_lattice_grid(views[:1])
        if exact is not None and all(_same_lattice(_exact_lattice_grid([v]), exact) for v in views[1:]):
            return exact
        exact = _resized_grid(views)
        if exact is not None:
            return exact
        if max(w, h) <= TINY_SPRITE and _colour_count(views) >= 2:
            return identity_grid(w, h, confidence=0.0)
    if (cw == 1.0 and ch == 1.0) or (tw == w and th == h):
        return identity_grid(w, h, confidence=1.0)
    soft = _softened(views)
    try:
        grid = _find_grid(soft, w, h, cw, ch, tw, th, source)
    except NoGridFoundError:
        if auto and all(_looks_true_resolution(v) for v in views):
            return identity_grid(w, h, confidence=0.0)
        raise
    if not auto:
        return grid
    if _enlarged_pixels(grid):
        grid = _inside_blocks(views, grid, source)
    why = None
    if grid.cols * grid.rows > 1 and all(_blank_cells(v, grid) for v in views):
        # a sprite sheet's frames centred on its lines: the cells read only the gaps between
        why = (f"every cell of the best lattice ({grid.cell_w:.1f}x{grid.cell_h:.1f} px) reads one and the same "
               "colour, though the image has more: the lattice misses its art")
    elif _many_colours(views):
        if (share := _detail_share(views, grid)) > DETAIL_MAX:
            # a lattice over art that already is at its true resolution (a tile sheet's tiles)
            why = (f"{share:.0%} of the pixels inside the best lattice's cells ({grid.cell_w:.1f}x{grid.cell_h:.1f} px) "
                   f"differ from their cell's colour by more than {DETAIL_LEVEL} levels, so it is not pseudo pixel art")
    # a few-colour image may be pseudo pixel art mapped to a palette, whose noise, mapped to
    # colours far apart, speckles the insides of its cells: only how often a cell keeps one
    # colour tells it from a small sprite or tile sheet (larger ones were read through a blur)
    elif max(w, h) <= SOFTEN_MIN_SIDE and (share := _mode_share(views, grid)) < MODE_SHARE_MIN:
        why = (f"only {share:.0%} of the pixels inside the best lattice's cells ({grid.cell_w:.1f}x{grid.cell_h:.1f} px) "
               "have their cell's most common colour, so it is not pseudo pixel art")
    if why is None:
        return grid
    if all(_looks_true_resolution(v) for v in views):
        return identity_grid(w, h, confidence=0.0)
    raise NoGridFoundError(f"no pixel grid found in {source}: {why}")


def _softened(views: list[np.ndarray]) -> list[np.ndarray]:
    """``views``, box-blurred by ``SOFTEN_RADIUS`` px when they hold ``TRUE_COLOURS`` colours or
    fewer and are over ``SOFTEN_MIN_SIDE`` px a side.

    Pseudo pixel art mapped to a palette (a quantize node before the snap, a GIF) has lost its
    blur: each cell's noise became speckle of two palette colours, each soft edge a hard step
    where the palette splits it, a dither a pattern of single pixels. Those hard pixel edges
    outweigh the cells' lines in the edge statistics and the flatness test; the blur gives the
    image back the soft edges the detector reads on diffusion output. Colours are still read
    from the image itself."""
    h, w = views[0].shape[:2]
    if max(h, w) <= SOFTEN_MIN_SIDE or not _few_colours(views):
        return views
    from PIL import Image, ImageFilter

    out = []
    for v in views:
        rgb = Image.fromarray(np.ascontiguousarray(v[..., :3])).filter(ImageFilter.BoxBlur(SOFTEN_RADIUS))
        out.append(np.concatenate([np.asarray(rgb), v[..., 3:]], axis=-1))
    return out


def _enlarged_pixels(grid: Grid) -> bool:
    """Whether ``grid`` reads the pixels of an image enlarged by a filter, which may hold pseudo
    pixel art: cells of at most ``ENLARGED_PIXEL`` px, found on their centres (a smooth
    enlargement) or a whole number of px wide and tall (an upscale node's 2, 3 or 4 times)."""
    if max(grid.cell_w, grid.cell_h) > ENLARGED_PIXEL:
        return False
    return grid.smooth or all(abs(c - round(c)) < JPEG_LOCK for c in (grid.cell_w, grid.cell_h))


def _inside_blocks(frames: list[np.ndarray], exact: Grid, source: str) -> Grid:
    """``exact`` (the blocks of a nearest-neighbour enlargement of ``frames``, or the pixels of
    one by a filter: :func:`_enlarged_pixels`), unless the images it reduces them to are pseudo
    pixel art themselves, as a diffusion image enlarged is: then the grid of those reduced
    images, in these images' pixels."""
    xl, yl = exact.x_lines, exact.y_lines
    h, w = frames[0].shape[:2]
    cx = np.clip(((xl[:-1] + xl[1:]) // 2).astype(np.intp), 0, w - 1)
    cy = np.clip(((yl[:-1] + yl[1:]) // 2).astype(np.intp), 0, h - 1)
    small = [np.ascontiguousarray(a[cy][:, cx]) for a in frames]
    # a sprite has a few dozen colours, at most a few hundred; pseudo pixel art's blur, noise
    # and JPEG give it thousands
    if _colour_count(small) <= TRUE_COLOURS:
        return exact
    try:
        inner = detect_grid_batch(small) if len(small) > 1 else detect_grid(small[0], source=source)
    except NoGridFoundError:
        return exact
    if inner.confidence <= 0.0:  # taken as at its true resolution after all
        return exact
    gx, gy = exact.cell_w, exact.cell_h
    x_lines, y_lines = xl[0] + inner.x_lines * gx, yl[0] + inner.y_lines * gy
    cw, ch = inner.cell_w * gx, inner.cell_h * gy
    return dataclasses.replace(inner, cell_w=cw, cell_h=ch, x_lines=x_lines, y_lines=y_lines,
                               phase=(float(x_lines[0] % cw), float(y_lines[0] % ch)), source_size=(w, h))


def _find_grid(frames: list[np.ndarray], w: int, h: int, cw, ch, tw, th, source: str) -> Grid:
    """:func:`_find_any_grid`, refused in automatic mode when its cells are more than
    ``MAX_CELL_RATIO`` times as wide as tall or as tall as wide: no pseudo pixel art draws such
    cells (2:1 at most, as wide-pixel modes do), while a smooth gradient under noise can offer a
    lattice of 54 x 10 px cells."""
    grid = _find_any_grid(frames, w, h, cw, ch, tw, th, source)
    auto = cw is None and ch is None and tw is None and th is None
    ratio = max(grid.cell_w / grid.cell_h, grid.cell_h / grid.cell_w)
    if auto and ratio > MAX_CELL_RATIO:
        raise NoGridFoundError(f"no pixel grid found in {source}: the best lattice has {grid.cell_w:.1f} x "
                               f"{grid.cell_h:.1f} px cells ({ratio:.1f}:1), which no pseudo pixel art draws")
    left, right, top, bottom = grid.flat_border
    across, down = grid.cols - left - right, grid.rows - top - bottom
    if auto and min(across, down) < MIN_GRID_CELLS:
        raise NoGridFoundError(f"no pixel grid found in {source}: the best lattice ({grid.cell_w:.1f} x "
                               f"{grid.cell_h:.1f} px cells) puts its art in only {across} x {down} cells, "
                               "too few for a sprite")
    return grid


def _find_any_grid(frames: list[np.ndarray], w: int, h: int, cw, ch, tw, th, source: str) -> Grid:
    """The grid of ``frames`` (one size, as :func:`_detection_view` reads them) with the
    checked overrides. In automatic mode a smooth enlargement is read on its cells' centres
    (:func:`_smooth_candidate`), and the grid found on the edges must hold the colours
    (:func:`_check_cells_hold_colours`). When no grid is found, or its cells are under
    ``FINE_CELL``, the edges are read again pixel to pixel (:func:`_fine_edge_maps`), and a
    grid of such small cells found that way is taken; so it is when the grid found has cells
    of up to ``FINE_SCREEN`` times that size, the pixel-to-pixel edges' spectrum peaks under
    it (:func:`_fine_period_hint`), and the finer grid redraws the colours with under
    ``FINE_WIN`` of the error. Before that, in automatic mode, when no grid is found or it
    sits on the block edges of an enlarged JPEG (:func:`_jpeg_block_period`), the edges
    are read again without those blocks (:func:`_deblocked`), and that grid is
    taken when its colours change at its lines more than at the first one's
    (:func:`_phase_ratio`)."""
    stride = _stride(h, w)
    auto = cw is None and ch is None and tw is None and th is None
    smooth, sure = _smooth_candidate(frames, w, h, stride, source) if auto else (None, False)
    if sure:
        return smooth
    args = (frames, w, h, cw, ch, tw, th, source, smooth)
    maps = _summed_maps(frames, stride, _edge_maps)
    try:
        grid = _grid_on_edges(*args, maps)
    except NoGridFoundError as err:
        grid, failure = None, err
    block = None
    if auto:
        if grid is None:
            block = _likeliest_block_period(maps)
        elif not grid.smooth:
            block = _jpeg_block_period(grid)
    deblocked = _deblocked(maps, block) if block else None
    if deblocked is not None:
        try:
            alt = _grid_on_edges(*args, deblocked)
        except NoGridFoundError:
            alt = None
        # the colours change at the art's lines, not at the codec's
        if alt is not None and not _same_blocks(_jpeg_block_period(alt), block) and (
                grid is None or _phase_ratio(frames, alt) < _phase_ratio(frames, grid)):
            grid = alt
    if grid is not None:
        small = min(grid.cell_w, grid.cell_h)
        # cells of 3 px, invisible to the span-3 edges, can pass for a lattice of 2 or 3 times
        # their size: read the edges pixel to pixel too when their spectrum says so
        if grid.smooth or small >= FINE_SCREEN * FINE_CELL:
            return grid
        if small >= FINE_CELL and not _fine_period_hint(frames, stride):
            return grid
    try:
        fine = _grid_on_edges(*args, _summed_maps(frames, stride, _fine_edge_maps))
    except NoGridFoundError:
        fine = None
    if fine is not None and not fine.smooth and min(fine.cell_w, fine.cell_h) < FINE_CELL:
        if grid is None or min(grid.cell_w, grid.cell_h) < FINE_CELL:
            return fine
        coarse = _recon_error(frames, grid.x_lines, grid.y_lines)
        if _recon_error(frames, fine.x_lines, fine.y_lines) < FINE_WIN * coarse:
            return fine
    if grid is None:
        raise _named_failure(failure, frames, source)
    return grid


def _named_failure(failure: NoGridFoundError, frames: list[np.ndarray], source: str) -> NoGridFoundError:
    """``failure`` naming ``source``, and saying so when the frames are fully transparent or
    one flat colour: the line search, which knows neither, only finds no regular edges."""
    if f" in {source}" in failure.message:
        return failure
    hint = None
    if all(f.shape[-1] == 4 and not (f[..., 3] > 0).any() for f in frames):
        why, hint = "it is fully transparent", "nothing is drawn in it: check the input (or what removed its background)"
    elif all((f[..., :3] == frames[0][0, 0, :3]).all() for f in frames):
        why = "it is one flat colour"
    else:
        why = "it has no regular edges"
    return NoGridFoundError(f"no pixel grid found in {source}: {why}", hint=hint)


def _jpeg_block_period(grid: Grid) -> int | None:
    """The period (px) of an enlarged JPEG's block edges that an axis of ``grid`` sits on: cells
    within ``JPEG_LOCK`` of a whole number of px that is a multiple of half a block from 1.5
    blocks (:data:`JPEG_BLOCK` enlarged 1.5, 2, 2.5 ... times), on lines at its multiples.
    Blocks enlarged so are edges no reading of 8 px blocks takes away; None when on none."""
    for lines, cell in ((grid.x_lines, grid.cell_w), (grid.y_lines, grid.cell_h)):
        block = _block_period(cell)
        if block:
            off = np.abs((lines + block / 2) % block - block / 2)
            if float(median(off)) <= 1.0:
                return block
    return None


def _block_period(cell: float) -> int | None:
    """The enlarged JPEG block period (px) within ``JPEG_LOCK`` of ``cell`` (px): a whole number of
    px that is a multiple of half a block, from 1.5 blocks; None when there is none."""
    block = round(cell)
    if abs(cell - block) < JPEG_LOCK and block % (JPEG_BLOCK // 2) == 0 and block >= 3 * JPEG_BLOCK // 2:
        return block
    return None


def _same_blocks(period: int | None, block: int) -> bool:
    """Whether block edges every ``period`` px (None: none) lie on those every ``block`` px or
    hold them: a JPEG's blocks read at one period show at its multiples too."""
    return period is not None and (period % block == 0 or block % period == 0)


def _likeliest_block_period(maps: tuple[np.ndarray, np.ndarray]) -> int:
    """Of ``JPEG_PERIODS``, the one whose multiples stand out most above the other residues in
    the edge ``maps`` (x and y together): where no grid was found, the likeliest period of an
    enlarged JPEG's block edges to read the maps again without. The multiples of a period's
    multiples stand out as much as its own: the smallest of those within a tenth of the most."""
    px = maps[0].sum(axis=0, dtype=np.float64)
    py = maps[1].sum(axis=1, dtype=np.float64)

    def standout(block: int) -> float:
        out = 0.0
        for p in (px, py):
            if len(p) >= 16 * block:
                means = _residue_means(p, block)
                base = median(means)
                out += means[0] / base if base > 0 else 0.0
        return out

    marks = {block: standout(block) for block in JPEG_PERIODS}
    top = max(marks.values())
    return min(block for block, mark in marks.items() if mark >= 0.9 * top)


def _deblocked(maps: tuple[np.ndarray, np.ndarray], block: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Copies of the edge ``maps`` (x, y) with the boundaries of each residue mod ``block`` (px)
    whose evidence stands clearly (by a quarter) above the median residue's replaced by the mean
    of their two neighbours: the block edges of an enlarged JPEG. Merely scaled down,
    they would still be crests, which the period is read from (:func:`_ridge_profile`); an
    art edge there keeps the evidence its neighbours share. None when no residue stands out."""
    out, changed = [], False
    for e, axis in zip(maps, (0, 1)):
        e = e.copy()
        view = e if axis == 0 else e.T  # boundaries along the last axis
        n = view.shape[1]
        if n >= 16 * block:
            means = _residue_means(view.sum(axis=0, dtype=np.float64), block)
            base = median(means)
            for k in np.nonzero(means > 1.25 * base)[0] if base > 0 else ():
                at = np.arange(k, n, block)
                at = at[(at > 0) & (at < n - 1)]
                view[:, at] = 0.5 * (view[:, at - 1] + view[:, at + 1])
                changed = True
        out.append(e)
    return (out[0], out[1]) if changed else None


def _fine_period_hint(frames: list[np.ndarray], stride: int) -> bool:
    """Whether the pixel-to-pixel edges of the first frame (every other sampled row and
    column) have their spectral peak at a period under ``FINE_CELL`` on either axis."""
    ex, ey = _fine_edge_maps(frames[0], 2 * stride)
    return any(0 < estimate_period(_axis_profile(e, axis))[0] < FINE_CELL for e, axis in ((ex, 0), (ey, 1)))


def _grid_on_edges(frames: list[np.ndarray], w: int, h: int, cw, ch, tw, th, source: str,
                   smooth: Grid | None, maps: tuple[np.ndarray, np.ndarray]) -> Grid:
    """:func:`_find_grid` on the edge ``maps`` (x, y), with the smooth reading ``smooth``."""
    auto = cw is None and ch is None and tw is None and th is None
    ex, ey = maps
    profiles = (_axis_profile(ex, 0), _axis_profile(ey, 1))
    if not auto:
        return _lines_to_crests(_grid_from_edges(ex, ey, w, h, cw, ch, tw, th, source, profiles=profiles), profiles)
    token = _SCORES.set({})
    try:
        grid = _check_cells_hold_colours(
            frames, _grid_from_edges(ex, ey, w, h, None, None, None, None, source, frames, profiles), source)
    except NoGridFoundError:
        if smooth is None:
            raise
        return smooth
    finally:
        _SCORES.reset(token)
    best = _better_of(frames, grid, smooth)
    return best if best is smooth else _lines_to_crests(grid, profiles)


def _summed_maps(frames: list[np.ndarray], stride: int, maps) -> tuple[np.ndarray, np.ndarray]:
    """``maps`` (:func:`_edge_maps` or :func:`_kink_maps`) of every frame, summed: a line
    seen in any frame counts."""
    ex = ey = None
    for a in frames:
        e1, e2 = maps(a, stride)
        ex, ey = (e1, e2) if ex is None else (ex + e1, ey + e2)
    return ex, ey


def _smooth_candidate(frames: list[np.ndarray], w: int, h: int, stride: int, source: str) -> tuple[Grid | None, bool]:
    """The grid of the frames read as a smooth enlargement (:func:`_grid_from_kinks`), and
    whether they surely are one; (None, False) when they surely are not, or no grid is found
    that way. Between ``SMOOTH_RATIO`` and ``SMOOTH_DOUBT`` (:func:`_smoothness`) noise or JPEG
    on an enlargement, or blur on pseudo pixel art, may have put them: both readings are then
    made, and the smooth one is kept only when its model redraws the image clearly better
    (:func:`_better_of`)."""
    ratio = _smoothness(frames[0], stride)
    if ratio >= SMOOTH_DOUBT:
        return None, False
    try:
        return _grid_from_kinks(frames, w, h, stride, source), ratio < SMOOTH_RATIO
    except NoGridFoundError:
        return None, False


def _better_of(frames: list[np.ndarray], grid: Grid, smooth: Grid | None) -> Grid:
    """``smooth`` when bilinear interpolation between its cells' centre colours redraws the
    frames clearly more closely (under ``SMOOTH_WIN`` of the error) than one colour per cell of
    ``grid`` does, else ``grid``. A finer lattice redraws anything a little better, so a near
    tie is no evidence: noisy or JPEG-compressed bilinear enlargements score 0.07-0.56, and
    heavily blurred pseudo pixel art (colour runs on 6-7 px cells, blur 1.25 px) 0.75 or more."""
    if smooth is None:
        return grid
    flat = _recon_error(frames, grid.x_lines, grid.y_lines)
    return smooth if _bilinear_error(frames, smooth) < SMOOTH_WIN * flat else grid


def _bilinear_error(frames: list[np.ndarray], grid: Grid) -> float:
    """Total absolute error (RGB levels) of redrawing each frame, on the sparse lattice of
    :func:`_recon_diffs`, by bilinear interpolation between the colours at its cells' centres:
    the image a smooth enlargement of the true sprite would be."""
    h, w = frames[0].shape[:2]
    step = _sparse_step(h, w)
    s0 = step // 2
    total = 0.0
    axes = []
    for lines, n in ((grid.x_lines, w), (grid.y_lines, h)):
        centres = 0.5 * (lines[:-1] + lines[1:])
        at = np.arange(s0, n, step) + 0.5
        t = np.interp(at, centres, np.arange(len(centres), dtype=np.float64))
        i0 = np.clip(np.floor(t).astype(np.intp), 0, max(0, len(centres) - 2))
        f = np.clip(t - i0, 0.0, 1.0)
        i1 = np.minimum(i0 + 1, len(centres) - 1)
        axes.append((np.clip(np.floor(centres).astype(np.intp), 0, n - 1), i0, i1, f))
    (px, x0, x1, fx), (py, y0, y1, fy) = axes
    fx, fy = fx[None, :, None], fy[:, None, None]
    for a in frames:
        c = a[py][:, px, :3].astype(np.float32)
        top = c[y0][:, x0] * (1 - fx) + c[y0][:, x1] * fx
        bottom = c[y1][:, x0] * (1 - fx) + c[y1][:, x1] * fx
        redraw = top * (1 - fy) + bottom * fy
        total += float(np.abs(redraw - a[s0::step, s0::step, :3]).sum())
    return total


def _phase_ratio(frames: list[np.ndarray], grid: Grid, diffs: list[np.ndarray] | None = None) -> float:
    """How much better one colour per cell of ``grid`` explains the image(s) than one colour per
    cell of the same lattice shifted by half a cell: the ratio of the two reconstruction
    errors (:func:`_recon_error`). Pseudo pixel art changes colour at its lines, so the
    shifted lattice, whose cells straddle them, does far worse (0.1-0.9 on the benchmark and
    real AI images, resized or not); a photo or painting has no lines, and the phase does not
    matter (~1). ``diffs``: the grid's :func:`_recon_diffs` when already computed.
    """
    shifted = _recon_error(frames, _half_shifted(grid.x_lines), _half_shifted(grid.y_lines))
    if diffs is None:
        diffs = _recon_diffs(frames, grid.x_lines, grid.y_lines)
    return sum(float(d.sum()) for d in diffs) / shifted if shifted > 0 else 0.0


def _recon_error(frames: list[np.ndarray], x_lines: np.ndarray, y_lines: np.ndarray) -> float:
    """Total absolute error (RGB levels) of painting each cell of the lattice in one colour
    (see :func:`_recon_diffs`)."""
    return sum((float(d.sum()) for d in _recon_diffs(frames, x_lines, y_lines)), 0.0)


def _recon_map(frames: list[np.ndarray], x_lines: np.ndarray, y_lines: np.ndarray) -> np.ndarray:
    """The same error per sparse pixel (summed over channels and frames; a 2-D array)."""
    out = None
    for d in _recon_diffs(frames, x_lines, y_lines):
        m = d.sum(axis=-1, dtype=np.int32)
        out = m if out is None else out + m
    return out


def _sparse_step(h: int, w: int) -> int:
    """Spacing (source px) of the sparse lattice of pixels (about 256 a side) that the colour
    tests read, from ``step // 2``."""
    return max(1, max(h, w) // 256)


def _recon_diffs(frames: list[np.ndarray], x_lines: np.ndarray, y_lines: np.ndarray, *, inner: bool = False):
    """Per frame, the absolute RGB difference (int16, rows x cols x 3) between the image and
    one colour per cell of the lattice, on a sparse lattice of pixels (about 256 a side); with
    ``inner``, on those of its rows and columns in the inner half of their cells only. A
    cell's colour is the mean of a 3 x 3 lattice in its inner half."""
    h, w = frames[0].shape[:2]
    step = _sparse_step(h, w)
    s0 = step // 2
    xs, ys = np.arange(s0, w, step), np.arange(s0, h, step)
    if inner:
        xs, ys = xs[_inner_half(x_lines, xs)], ys[_inner_half(y_lines, ys)]
    cx = sample_coords(x_lines, w, 3, 0.25, 0.75).ravel()
    cy = sample_coords(y_lines, h, 3, 0.25, 0.75).ravel()
    xi = np.clip(np.searchsorted(x_lines, xs, side="right") - 1, 0, len(x_lines) - 2)
    yi = np.clip(np.searchsorted(y_lines, ys, side="right") - 1, 0, len(y_lines) - 2)
    # the sparse pixels of a cell are one run (the indices are sorted): each cell's colour
    # repeated over its run costs half what gathering it per pixel does
    ny, nx = np.bincount(yi, minlength=len(y_lines) - 1), np.bincount(xi, minlength=len(x_lines) - 1)
    for a in frames:
        samp = a[cy][:, cx, :3].astype(np.int16)  # sums of 9 uint8 fit in int16
        rows3 = samp[0::3] + samp[1::3] + samp[2::3]
        cells = (rows3[:, 0::3] + rows3[:, 1::3] + rows3[:, 2::3]) // 9
        d = cells.repeat(ny, axis=0).repeat(nx, axis=1)
        np.subtract(d, a[ys][:, xs, :3] if inner else _sparse_pixels(a), out=d)
        yield np.abs(d, out=d)


def _sparse_pixels(a: np.ndarray) -> np.ndarray:
    """The RGB of ``a`` on the sparse lattice of :func:`_recon_diffs` as int16: read once per
    automatic detection (every lattice tried compares with the same pixels)."""
    step = _sparse_step(*a.shape[:2])
    return _memo(("sparse", id(a)), lambda: a[step // 2 :: step, step // 2 :: step, :3].astype(np.int16))


def _cell_flatness(frames: list[np.ndarray], grid: Grid, diffs: list[np.ndarray] | None = None) -> tuple[float, float]:
    """How well one colour per cell of ``grid`` explains the inside of its cells:
    (noise ratio, R^2), over the pixels of each cell's inner half on the sparse lattice of
    :func:`_recon_diffs`.

    The noise ratio is their mean absolute difference from the cell's colour (RGB levels
    summed over channels) over the median absolute second difference of neighbouring pixels
    (the image's own pixel noise, at least 3 levels so clean images do not divide by zero);
    R^2 is the share of their variance the cells' colours explain. The inside of a pseudo
    pixel is one colour plus noise: R^2 0.93 or more, or a noise ratio of at most 1.3 on
    low-contrast art (benchmark, generated and real AI images, resized or not). A photo,
    painting, clip-art or screenshot varies inside any lattice's cells: R^2 under 0.85 with a
    noise ratio of 2.6-22 on 18 of 21 such images that pass :func:`_phase_ratio`. ``diffs``: the
    grid's :func:`_recon_diffs` when already computed.
    """
    h, w = frames[0].shape[:2]
    mask = _inner_mask(grid, h, w)
    if not mask.any():
        return 0.0, 1.0
    absdev = sqdev = total = noise = 0.0
    k = float(mask.sum())
    for a, d in zip(frames, diffs if diffs is not None else _recon_diffs(frames, grid.x_lines, grid.y_lines)):
        dm = d[mask].astype(np.float32).ravel()
        absdev += float(dm.sum()) / k
        sqdev += float(dm @ dm) / k
        px = _sparse_pixels(a)[mask].astype(np.float32)
        px = (px - px.mean(axis=0)).ravel()
        total += float(px @ px) / k
        if w >= 3:
            noise += _pixel_noise(a)
    n = len(frames)
    return absdev / max(3.0 * n, noise), (1.0 - sqdev / total if total > 0 else 1.0)


def _inner_half(lines: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Which positions ``at`` (px) lie in the inner half of their cell between ``lines``."""
    i = np.clip(np.searchsorted(lines, at, side="right") - 1, 0, len(lines) - 2)
    f = (at - lines[i]) / np.maximum(lines[i + 1] - lines[i], 1e-9)
    return (f >= 0.25) & (f < 0.75)


def _inner_mask(grid: Grid, h: int, w: int) -> np.ndarray:
    """Which pixels of the sparse lattice of :func:`_recon_diffs` (an image ``h`` x ``w``) lie
    in the inner half of their cell of ``grid`` on both axes."""
    step = _sparse_step(h, w)
    s0 = step // 2
    return _inner_half(grid.y_lines, np.arange(s0, h, step))[:, None] & _inner_half(grid.x_lines, np.arange(s0, w, step))[None, :]


def _detail_share(frames: list[np.ndarray], grid: Grid) -> float:
    """The share (0..1) of the pixels in the inner half of ``grid``'s cells (on the sparse
    lattice of :func:`_recon_diffs`) that differ from their cell's colour by more than
    ``DETAIL_LEVEL`` in some channel; of several ``frames``, the median frame's (one frame of
    noise in a batch is named on its own result, see :func:`snap_batch`).

    The inside of a pseudo pixel is one colour under noise, blur and JPEG, which stay far
    below that level there; cells laid over pixel art at its true resolution (a tile's 16 or
    32 px, a sprite's repeating motif) hold the art's own pixels."""
    far = [np.count_nonzero(d.max(axis=-1) > DETAIL_LEVEL) / max(1, d.shape[0] * d.shape[1])
           for d in _recon_diffs(frames, grid.x_lines, grid.y_lines, inner=True)]
    return float(median(np.asarray(far)))


def _mode_share(frames: list[np.ndarray], grid: Grid) -> float:
    """The share (0..1) of a 4 x 4 lattice of samples in the inner half of ``grid``'s cells
    that have the colour most of their cell's samples have, over all cells; of several
    ``frames``, the median frame's.

    A pseudo pixel mapped to a palette keeps one colour under its speckle or dither (snap-dev's
    cases shrunk to 240 px and mapped to PICO-8 or 16 colours, dithered or not, read at their
    true size: 0.47-1.00, one of 86 under 0.5); a lattice laid over a tile sheet's stone floors
    or walls finds the art's own pixels there (13 of the 19 few-colour windows of
    ``bench/snap_true_art.py`` that were reduced: 0.34-0.45; character sheets 0.62-0.78)."""
    h, w = frames[0].shape[:2]
    cx = sample_coords(grid.x_lines, w, 4, 0.25, 0.75)
    cy = sample_coords(grid.y_lines, h, 4, 0.25, 0.75)
    shares = []
    for a in frames:
        packed = np.ascontiguousarray(a).view(np.uint32)[..., 0]
        samp = packed[cy.ravel()][:, cx.ravel()].reshape(len(cy), 4, len(cx), 4).transpose(0, 2, 1, 3)
        samp = samp.reshape(-1, 16)
        # each sample's count of equal samples in its cell; the largest is the mode's
        counts = (samp[:, :, None] == samp[:, None, :]).sum(axis=2, dtype=np.int32).max(axis=1)
        shares.append(float(counts.sum()) / samp.size)
    return float(median(np.asarray(shares)))


def _blank_cells(a: np.ndarray, grid: Grid) -> bool:
    """Whether the cells of ``grid`` all read one colour in ``a`` (which is not flat: such
    images are refused before any lattice is read): in every cell, at least 5 of a 3 x 3
    lattice of samples in its inner half have the colour that most samples have."""
    h, w = a.shape[:2]
    cx = sample_coords(grid.x_lines, w, 3, 0.25, 0.75)
    cy = sample_coords(grid.y_lines, h, 3, 0.25, 0.75)
    centres = np.ascontiguousarray(a[cy[:, 1]][:, cx[:, 1]]).view(np.uint32)
    if np.count_nonzero(centres == centres.flat[0]) < BLANK_SHARE * centres.size:
        return False  # noise or art: the centres differ, the usual case, told at once
    samples = np.ascontiguousarray(a[cy.ravel()][:, cx.ravel()]).view(np.uint32)[..., 0]
    colours, counts = np.unique(samples, return_counts=True)
    same = (samples == colours[np.argmax(counts)]).reshape(len(grid.y_lines) - 1, 3, len(grid.x_lines) - 1, 3)
    return bool((same.sum(axis=(1, 3)) >= 5).all())


def _many_colours(frames: list[np.ndarray]) -> bool:
    """Whether the sparse pixels of :func:`_recon_diffs` of ``frames`` hold more than
    ``TRUE_COLOURS`` distinct colours (then the frames do too)."""
    h, w = frames[0].shape[:2]
    step = _sparse_step(h, w)
    sparse = [_pixels32(a)[step // 2 :: step, step // 2 :: step] for a in frames]
    # a few rows of them usually hold that many already (noise, a painting): a sort of a
    # sixteenth of the pixels, where all of them take a millisecond at 1024 x 1024
    if _distinct([f[:: 16] for f in sparse]) > TRUE_COLOURS:
        return True
    return _distinct(sparse) > TRUE_COLOURS


def _few_colours(frames: list[np.ndarray]) -> bool:
    """Whether ``frames`` hold ``TRUE_COLOURS`` distinct colours or fewer: counted when their
    sparse pixels hold that few, on every pixel of a frame up to 4 megapixels and on an even
    lattice of about that many in a larger one (a 16k image's full count sorts a gigabyte)."""
    if _many_colours(frames):
        return False
    h, w = frames[0].shape[:2]
    step = max(1, math.ceil(math.sqrt(h * w / 4_000_000)))
    return _distinct([_pixels32(a)[::step, ::step] for a in frames]) <= TRUE_COLOURS


def _crisp(a: np.ndarray) -> bool:
    """Whether ``a`` is drawn on its own pixels: at least ``CRISP_SHARE`` of them repeat a
    neighbour's exact colour (left, right, above or below), and at most ``CRISP_SOFT`` of the
    neighbours that differ do so by ``CRISP_STEP`` levels or less in every channel. Noise
    leaves a diffusion image few repeated pixels bar flat, noiseless backgrounds, and its
    neighbours differ softly, as a gradient's do."""
    p = np.ascontiguousarray(a).view(np.uint32)[..., 0]
    same = np.zeros(p.shape, dtype=bool)
    dx, dy = p[:, 1:] == p[:, :-1], p[1:] == p[:-1]
    same[:, 1:] |= dx
    same[:, :-1] |= dx
    same[1:] |= dy
    same[:-1] |= dy
    if float(same.mean()) < CRISP_SHARE:
        return False
    i = a.astype(np.int16)
    steps = np.concatenate([np.abs(i[:, 1:] - i[:, :-1]).max(axis=-1)[~dx], np.abs(i[1:] - i[:-1]).max(axis=-1)[~dy]])
    # one flat colour is no art at all
    return steps.size > 0 and float(np.count_nonzero(steps <= CRISP_STEP)) <= CRISP_SOFT * steps.size


def _pixel_noise(a: np.ndarray) -> float:
    """The median absolute second difference along x (RGB levels summed) at the sparse pixels
    of :func:`_recon_diffs`, on every other sparse row of ``a`` (plenty): the image's own pixel
    noise, which no lattice changes, so it is read once per automatic detection (see
    :data:`_SCORES`). ``a`` is at least 3 px wide."""
    def read() -> float:
        h, w = a.shape[:2]
        step = _sparse_step(h, w)
        s0 = step // 2
        xs = np.clip(np.arange(s0, w, step), 1, w - 2)
        rows, trio = a[s0::2 * step], np.stack([xs - 1, xs, xs + 1])
        rgb = rows[:, trio, :3].astype(np.int16)
        second = np.abs(rgb[:, 0] + rgb[:, 2] - 2 * rgb[:, 1]).sum(axis=-1)
        opaque = (rows[:, trio, 3] > 0).all(axis=1) if a.shape[-1] == 4 else None
        if opaque is not None and not opaque.all():
            # transparency is flat (composited): its zeros say nothing of the noise
            second = second[opaque] if opaque.any() else second
        return float(median(second))

    return _memo(("noise", id(a)), read)


def _subharmonic(profile: np.ndarray, period: float) -> float:
    """The profile's spectral magnitude near twice ``period`` relative to that near
    ``period`` (each the best over +-2-3 %)."""
    q = _windowed(profile)

    def best(p0, rel, n):
        return float(np.sqrt(_dtft_power(q, 1.0 / (p0 * np.linspace(1 - rel, 1 + rel, n))).max()))

    fund = best(period, 0.02, 5)
    return best(2.0 * period, 0.03, 7) / fund if fund > 0 else 0.0


def _merge_split_cells(frames: list[np.ndarray], grid: Grid, axes) -> Grid:
    """``grid`` re-detected at twice its period on both axes when its cells are halves of the
    true ones.

    An AI image that draws a faint grid inside every pseudo pixel, at half its size, gives the
    finer lattice the stronger spectrum and lines at every half cell. Its colours still change
    only at every other line, so the coarser lattice explains them almost exactly as well: its
    extra reconstruction error is a small share of what shifting the lattice by half a cell
    costs, everywhere in the image (:func:`_explains_as_well`). On a true grid the coarser
    lattice straddles half of the colour changes and costs about as much as the shift on at
    least one axis (art may well pair its rows, or its columns, but not both), or at least in
    its detailed parts. Each axis's coarser lattice is the best of every other line (either
    parity) and a re-detection at twice the period. ``axes`` holds, for x and y, the arguments that
    :func:`_detect_axis` needs: (edge map, length, profile, period profile, estimate).
    """
    lines = (grid.x_lines, grid.y_lines)
    periods = (grid.cell_w, grid.cell_h)
    if min(len(lines[0]), len(lines[1])) < 9:
        return grid
    if max(_subharmonic(axes[i][2], periods[i]) for i in (0, 1)) < SPLIT_SCREEN:
        return grid
    e0 = _recon_map(frames, *lines)
    step = _sparse_step(*frames[0].shape[:2])
    block = max(4, int(round(4.0 * max(periods) / step)))  # about four cells of the finer lattice
    merged = []
    for i in (0, 1):
        best = None
        for cand in _coarser_axes(axes[i], i, lines[i], periods[i]):
            xy = list(lines)
            xy[i] = cand.lines
            cost = _recon_map(frames, *xy)
            if best is None or cost.sum() < best[0].sum():
                best = (cost, cand)
        if best is None:
            return grid
        shifted = list(lines)
        shifted[i] = _half_shifted(lines[i])
        shift = _recon_map(frames, *shifted)
        if not _explains_as_well(best[0] - e0, shift - e0, block):
            return grid
        merged.append(best[1])
    return _grid_of(*merged, grid)


def _grid_of(ax: _Axis, ay: _Axis, like: Grid) -> Grid:
    """The grid of the axes ``ax``, ``ay``, with ``like``'s confidence and source size."""
    return Grid(cell_w=float(ax.period), cell_h=float(ay.period), cols=len(ax.lines) - 1, rows=len(ay.lines) - 1,
                x_lines=ax.lines, y_lines=ay.lines, confidence=like.confidence,
                phase=(float(ax.lines[0] % ax.period), float(ay.lines[0] % ay.period)), source_size=like.source_size)


def _explains_as_well(extra: np.ndarray, shift_extra: np.ndarray, block: int) -> bool:
    """Whether a coarser lattice, costing ``extra`` reconstruction error per sparse pixel over
    the finer one, explains the colours about as well as the finer: its extra error is under
    ``SPLIT_MAX`` of what shifting the finer lattice by half a cell costs (``shift_extra``),
    over the whole image and, at the 90th percentile, under ``SPLIT_LOCAL_MAX`` in blocks of
    ``block`` sparse pixels a side where the shift costs something. The local test keeps art
    whose large flat areas pair every cell but whose detailed parts (a dithered patch) do not;
    the quieter blocks' median (``SPLIT_QUIET``) keeps low-contrast art whose loud outline
    alone would pair."""
    total = float(shift_extra.sum())
    if not (total > 0 and float(extra.sum()) < SPLIT_MAX * total):
        return False
    h, w = extra.shape
    hb, wb = max(1, h // block), max(1, w // block)
    bh, bw = h // hb, w // wb

    def sums(m):
        return m[: hb * bh, : wb * bw].reshape(hb, bh, wb, bw).sum(axis=(1, 3))
    se, ss = sums(extra), sums(shift_extra)
    sig = ss > 0.25 * float(ss.max())
    quiet = (ss > SPLIT_QUIET * float(ss.max())) & ~sig
    if quiet.sum() >= SPLIT_QUIET_BLOCKS and median(se[quiet] / ss[quiet]) >= SPLIT_LOCAL_MAX:
        return False
    return bool(sig.any()) and quantile(se[sig] / ss[sig], 90) < SPLIT_LOCAL_MAX


def _coarser_axes(args, axis: int, lines: np.ndarray, period: float) -> list[_Axis]:
    """Candidate lattices of one axis at twice ``period``: every other line of ``lines`` (both
    parities), and the axis re-detected at twice the period (which follows a drawn grid
    whose phase flips from half to half across the image). The re-detection reads the
    spectral peak near twice the period, or where the band has none there (or the lines fall
    back to halves), takes the doubled period itself; it counts only when it comes out with
    at most 0.6 times as many cells."""
    e, length, sm, spec, est = args
    cells = len(lines) - 1
    out = [_every_other(lines, start, length) for start in (0, 1)]
    for kw in ({"cell": None, "hint": 2.0 * period, "spec": spec, "est": est}, {"cell": 2.0 * period}):
        try:
            cand = _detect_axis(e, axis, length, count=None, sm=sm, **kw)
        except NoGridFoundError:
            continue
        if len(cand.lines) - 1 <= 0.6 * cells:
            out.append(cand)
            break
    return out


def _every_other(lines: np.ndarray, start: int, length: int) -> _Axis:
    """Every other line of ``lines`` from index ``start``, continued one cell past each end;
    a border cell counts when its centre is inside the image (as in :func:`_complete_lines`)."""
    x = np.asarray(lines[start::2], dtype=np.float64)
    p = float(x[-1] - x[0]) / max(1, len(x) - 1)
    x = np.concatenate([[x[0] - p], x, [x[-1] + p]])
    centres = 0.5 * (x[:-1] + x[1:])
    inside = np.nonzero((centres >= 0) & (centres < length))[0]
    return _Axis(lines=x[inside[0] : inside[-1] + 2], period=p, confidence=1.0)


def _check_cells_hold_colours(frames: list[np.ndarray], grid: Grid, source: str) -> Grid:
    """``grid``, unless its colours ignore its lines (see :func:`_phase_ratio`) or vary inside
    its cells (see :func:`_cell_flatness`): then ``NoGridFoundError``, rather than a lattice
    laid over a photo, painting or screenshot."""
    why = _not_pixel_art(_lattice_score(frames, grid), f"the best lattice ({grid.cell_w:.1f}x{grid.cell_h:.1f} px cells)")
    if why:
        raise NoGridFoundError(f"no pixel grid found in {source}: {why}, so it is not pseudo pixel art")
    return grid


def _not_pixel_art(score: tuple[float, float, float], cells: str = "the lattice") -> str | None:
    """Why a lattice of this :func:`_lattice_score` is no pseudo pixel grid (naming it
    ``cells``), or None when it is one."""
    ratio, noise_ratio, r2 = score
    if ratio > PHASE_RATIO_MAX:
        return f"its colours do not change at the lines of {cells}"
    if (r2 < FLAT_R2_MIN and noise_ratio > FLAT_NOISE_MAX) or (r2 < FLAT_R2_HARD and noise_ratio > FLAT_NOISE_HARD):
        return f"its colours vary inside the cells of {cells} far beyond its pixel noise"
    return None


def _half_shifted(lines: np.ndarray) -> np.ndarray:
    """The cell centres of ``lines`` as lines, continued one cell past each end."""
    x = np.asarray(lines, dtype=np.float64)
    m = 0.5 * (x[:-1] + x[1:])
    d0, d1 = (m[1] - m[0], m[-1] - m[-2]) if len(m) >= 2 else (x[1] - x[0],) * 2
    return np.concatenate([[m[0] - d0], m, [m[-1] + d1]])


def identity_grid(w: int, h: int, *, confidence: float = 1.0) -> Grid:
    """The grid of an image that already is at true resolution: one cell per source pixel."""
    return Grid(cell_w=1.0, cell_h=1.0, cols=w, rows=h, x_lines=np.arange(w + 1, dtype=np.float64),
                y_lines=np.arange(h + 1, dtype=np.float64), confidence=confidence, source_size=(w, h), exact=True)


def _looks_true_resolution(a: np.ndarray) -> bool:
    """Whether ``a``, in which no pseudo pixel grid was found, is taken as a sprite (or sheet) at
    its true resolution: when it is crisp (:func:`_crisp`), or up to 256 px a side with 256
    colours or fewer. Pseudo pixel art mapped to a palette is crisp too, but its grid is read
    through the blur of :func:`_softened`, which finds it (see ``SOFTEN_RADIUS``)."""
    h, w = a.shape[:2]
    if max(h, w) <= SOFTEN_MIN_SIDE and 2 <= _colour_count([a]) <= TRUE_COLOURS:
        return True
    return _crisp(a)


def _colour_count(frames: list[np.ndarray]) -> int:
    """Distinct RGBA values over ``frames`` (each (H, W, 4) uint8)."""
    return _distinct([_pixels32(f) for f in frames])


def _pixels32(a: np.ndarray) -> np.ndarray:
    """(H, W) uint32: the whole pixels of ``a`` (H, W, 4 uint8), a view where ``a`` is
    contiguous. A lattice of them is gathered four times faster than the same pixels' bytes."""
    return np.ascontiguousarray(a).view(np.uint32)[..., 0]


def _distinct(packed: list[np.ndarray]) -> int:
    """Distinct values over the uint32 arrays ``packed`` (whole pixels, see :func:`_pixels32`)."""
    v = np.sort(np.concatenate([p.ravel() for p in packed]))
    return 1 + int(np.count_nonzero(v[1:] != v[:-1])) if v.size else 0


def _exact_runs(change: np.ndarray, n: int, *, borders: bool = True) -> int:
    """Largest integer cell g >= 2 that every run of identical columns (rows) is a multiple of;
    without ``borders`` the runs at the image's borders are not checked."""
    pos = np.nonzero(change)[0] + 1  # boundaries between differing neighbours
    if len(pos) < 2:
        return 0
    inner = np.diff(pos)
    g = int(np.gcd.reduce(inner.astype(np.int64)))
    if g < 2:
        return 0
    # a border run longer than a cell is a flat margin, as an enlarged sprite's transparent
    # surroundings are; but a few runs may share a factor by chance (all of k runs are even
    # one time in 2**k, all multiples of 8 one time in 8**k), so when that chance is not
    # small the border runs must fit in a cell too
    if borders and (pos[0] > g or n - pos[-1] > g) and (
            len(inner) < 3 or g > MAX_CELL or len(inner) * math.log2(g) < EXACT_RUNS):
        return 0
    return g


def _fits_blocks(change: np.ndarray, n: int, g: int) -> bool:
    """Whether an axis with at most one colour change (``change``, length ``n`` - 1) is ``g`` px
    blocks from its start: ``n`` a multiple of ``g`` and the change, if any, on a block edge."""
    pos = np.nonzero(change)[0] + 1
    return len(pos) <= 1 and n % g == 0 and n // g <= 2 and bool(np.all(pos % g == 0))


def _changes(packed: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Where the colour changes in any of the frames ``packed`` (H, W uint32, one per pixel):
    between columns i and i + 1 (length W - 1) and between rows (length H - 1)."""
    return (np.logical_or.reduce([np.any(p[:, 1:] != p[:, :-1], axis=0) for p in packed]),
            np.logical_or.reduce([np.any(p[1:] != p[:-1], axis=1) for p in packed]))


def _exact_block_grid(frames: list[np.ndarray]) -> Grid | None:
    """Grid of a clean integer nearest-neighbour upscale (constant g x g blocks, on the same
    lattice in every frame of ``frames``), else None.

    Such an image round-trips exactly; detecting it by equal neighbouring columns and rows is
    exact where the edge statistics would only be close.
    """
    h, w = frames[0].shape[:2]
    if h * w * len(frames) > 4096 * 4096:
        return None
    packed = [np.ascontiguousarray(a).view(np.uint32).reshape(h, w) for a in frames]
    # cheap rejection on a few rows / columns first: noisy images fail at once
    for p in packed:
        few_r = p[:: max(1, h // 8)]
        few_c = p[:, :: max(1, w // 8)]
        # (a few rows may cross only a margin and one motif: their borders prove nothing;
        # one change or none proves nothing either way)
        for chg, n in ((np.any(few_r[:, 1:] != few_r[:, :-1], axis=0), w), (np.any(few_c[1:] != few_c[:-1], axis=1), h)):
            if np.count_nonzero(chg) >= 2 and not _exact_runs(chg, n, borders=False):
                return None
    colchg, rowchg = _changes(packed)
    gx = _exact_runs(colchg, w)
    gy = _exact_runs(rowchg, h)
    # A sprite 1 or 2 pixels tall (a health bar, a strip) changes colour once or never down
    # its rows: they cannot measure the cell, but may take the other axis's when it fits them
    # as an enlargement's blocks do, whole and from the image's edge.
    if gx and not gy and _fits_blocks(rowchg, h, gx):
        gy = gx
    elif gy and not gx and _fits_blocks(colchg, w, gy):
        gx = gy
    if not gx or not gy:
        return None
    x0 = (np.nonzero(colchg)[0][0] + 1) % gx if colchg.any() else 0
    y0 = (np.nonzero(rowchg)[0][0] + 1) % gy if rowchg.any() else 0
    xl = np.arange(x0 - (gx if x0 > 0 else 0), w + gx, gx, dtype=np.float64)
    yl = np.arange(y0 - (gy if y0 > 0 else 0), h + gy, gy, dtype=np.float64)
    xl = xl[: np.searchsorted(xl, w, side="left") + 1]
    yl = yl[: np.searchsorted(yl, h, side="left") + 1]
    return Grid(cell_w=float(gx), cell_h=float(gy), cols=len(xl) - 1, rows=len(yl) - 1, x_lines=xl, y_lines=yl,
                confidence=1.0, phase=(float(x0), float(y0)), source_size=(w, h), exact=True)


def _resized_axis(changes: np.ndarray, n: int) -> tuple[int, np.ndarray, float] | None:
    """(cells, lines, chance) of an axis of ``n`` px that a whole sprite of ``cells`` (n/2 <
    cells < n) pixels was resized to by nearest neighbour, when every colour change
    (``changes``: length n - 1, True where pixel i + 1 differs from pixel i) starts one of its
    cells, else None. Pixel x shows cell floor(x * cells / n), or (Pillow's resize, as most
    viewers) cell floor((x + 0.5) * cells / n) as Pillow sums it up in floating point, which
    rounds the exact halves down. ``lines``: the cells' first pixels, and n. ``chance``: how
    likely the changes all fall on cell starts by accident, over the sizes tried."""
    b = np.nonzero(changes)[0] + 1
    # a cell of 1 px between two changes: what a factor under 2 draws and a lattice of 2 px
    # or more (an enlargement, frames drawn out of phase) never does; without one, a lattice
    # of 1-2 px cells could hold the changes of a regular pattern by its regularity alone
    if len(b) < 4 or not (np.diff(b) == 1).any():
        return None
    sizes = np.arange(n // 2 + 1, n, dtype=np.int64)
    x = np.arange(n, dtype=np.int64)[None, :]
    chunk = max(1, (1 << 20) // n)  # candidate sizes at a time: a few MB however long the axis
    for pillow in (True, False):
        # the fewest cells that hold every change first: more cells hold them too
        for i in range(0, len(sizes), chunk):
            cells = sizes[i : i + chunk, None]
            if pillow:
                steps = np.repeat(cells / n, n, axis=1)
                steps[:, 0] *= 0.5
                src = np.cumsum(steps, axis=1).astype(np.int64)
            else:
                src = x * cells // n
            fits = np.nonzero((src[:, b] != src[:, b - 1]).all(axis=1))[0]
            if fits.size:
                m = int(cells[fits[0], 0])
                starts = np.nonzero(np.diff(src[fits[0]]))[0] + 1
                lines = np.concatenate([[0], starts, [n]]).astype(np.float64)
                return m, lines, _all_on(len(b), m - 1, n - 1) * len(sizes)
    return None


def _all_on(k: int, on: int, of: int) -> float:
    """The chance that ``k`` distinct positions drawn at random from ``of`` all fall among ``on``
    given ones: C(on, k) / C(of, k)."""
    if k > on:
        return 0.0
    return math.exp(math.lgamma(on + 1) - math.lgamma(on - k + 1) - math.lgamma(of + 1) + math.lgamma(of - k + 1))


def _resized_grid(frames: list[np.ndarray]) -> Grid | None:
    """Grid of a whole sprite resized by nearest neighbour by a factor between 1 and 2 (a 32 px
    sprite shown at 48 px: cells of 1 and 2 px), whose colour changes all start a cell on both
    axes in every frame (:func:`_resized_axis`), else None. Its cells hold the sprite's own
    colours, kept exactly. True-resolution art changes colour at every pixel boundary of an
    axis, which no such size holds; blur, noise or JPEG do too."""
    h, w = frames[0].shape[:2]
    if h * w * len(frames) > 4096 * 4096 or min(h, w) < 3:
        return None
    packed = [np.ascontiguousarray(a).view(np.uint32).reshape(h, w) for a in frames]
    # cheap rejection on a few rows first: at a factor over 1.1 a tenth of the boundaries
    # between a row's first and last change start no cell, where noise changes colour at
    # nearly all of them
    few = np.nonzero(np.logical_or.reduce([np.any(p[:: max(1, h // 8), 1:] != p[:: max(1, h // 8), :-1], axis=0)
                                           for p in packed]))[0]
    if few.size > 10 and few.size > 0.9 * (few[-1] - few[0] + 1):
        return None
    colchg, rowchg = _changes(packed)
    ax, ay = _resized_axis(colchg, w), _resized_axis(rowchg, h)
    if ax is None or ay is None or max(ax[2], ay[2]) >= EXACT_LATTICE_CHANCE_AXIS or ax[2] * ay[2] >= RESIZED_CHANCE:
        return None
    (mx, xl, _), (my, yl, _) = ax, ay
    return Grid(cell_w=w / mx, cell_h=h / my, cols=mx, rows=my, x_lines=xl, y_lines=yl, confidence=1.0,
                phase=(0.0, 0.0), source_size=(w, h), exact=True)


def _boundaries(changes: np.ndarray) -> np.ndarray:
    """Pixel boundaries (float px) where the colour changes along an axis: ``changes[i]`` True
    where pixel i + 1 differs from pixel i puts one at i + 1."""
    return np.nonzero(changes)[0].astype(np.float64) + 1.0


def _lattice_fit(changes: np.ndarray, n: int) -> tuple[float, float, float] | None:
    """(cell, offset, chance) of the lattice that the colour changes of a crisp, non-integer
    nearest-neighbour enlargement sit on along one axis (``changes``: length ``n`` - 1, True
    where pixel i + 1 differs from pixel i), else None; ``chance``: how likely so many changes
    fit one by accident (the caller weighs both axes together).

    Such an enlargement by ``f`` starts cell k at pixel ceil(k f + c): every change lies within
    one pixel of k f + c, and nowhere else. The largest ``f`` (from 2 px) whose lattice holds
    every change that way is the cell (a finer lattice holds them too); ``offset`` puts the
    lines half a pixel before each cell's first pixel. Too few changes for a fit to be more
    than chance (``EXACT_LATTICE_CHANCE_AXIS``) give None.
    """
    b = _boundaries(changes)
    if len(b) < 4:
        return None
    gmin = float(np.min(np.diff(b)))
    if gmin < 2:
        return None
    best = None
    some = b if len(b) <= 256 else b[np.linspace(0, len(b) - 1, 256).astype(np.intp)]
    # the smallest gap is m cells (m = 1 when the art has a single-cell detail) rounded to whole
    # pixels: f lies in [(gmin - 1) / m, (gmin + 1) / m]; the largest f that fits is the cell
    for m in range(1, int((gmin + 1) // 2) + 1):
        hi, lo = (gmin + 1) / m, max(2.0, (gmin - 1) / m)
        if hi < lo:
            break
        # steps fine enough that the lattice drifts under 0.1 px over the whole axis, tried in
        # chunks on at most 256 of the changes (all of them are checked after)
        step = 0.1 * lo / n
        every = np.arange(hi, lo - step, -step)
        for i in range(0, len(every), 2048):
            fs = every[i : i + 2048, None]
            r = np.mod(some[None, :], fs)
            # circular spread of the residuals: changes straddling the wrap are shifted by f
            r_sorted = np.sort(r, axis=1)
            gaps = np.diff(np.concatenate([r_sorted, r_sorted[:, :1] + fs], axis=1), axis=1)
            ok = np.nonzero(fs[:, 0] - gaps.max(axis=1) < 1.0 + 0.2)[0]
            if ok.size:
                # the middle of the largest cells that fit: at the largest, the lattice can sit a
                # pixel off at the far end, and the changes' lattice indices then come out wrong
                # (two changes on one index: 48 cells of 2.25 px read from 2.289)
                breaks = np.nonzero(np.diff(ok) > 1)[0]
                run = ok[: breaks[0] + 1] if breaks.size else ok
                best = float(fs[run[len(run) // 2], 0])
                tried = fs[run, 0]
                break
        if best is not None:
            break
    if best is None:
        return None
    # refine on the changes' own lattice indices; their residuals span under a pixel. The
    # least-squares slope is no minimax fit of rounded positions (2.5 px cells read 2.519, their
    # residuals 1.3 px wide): the cell that fits the narrowest span wins, that or one tried
    k = np.round((b - b[0]) / best)
    kc = k - k.mean()
    f = float(kc @ (b - b.mean()) / (kc @ kc)) if (kc @ kc) > 0 else best
    spans = [(float(np.ptp(b - k * c)), c) for c in (f, *tried.tolist())]
    width, f = min(spans)
    res = b - k * f
    if width >= 1.0 + 0.2 or f < 2.0:
        return None
    # the chance that this many changes fall in a window that narrow by accident, over the
    # lattices the range holds that differ by a pixel somewhere on the axis: a sprite with few
    # changes proves no lattice
    lattices = (hi - lo) * n / (lo * lo) + 1.0
    chance = ((width + 0.1) / f) ** (len(b) - 1) * lattices
    if chance >= EXACT_LATTICE_CHANCE_AXIS:
        return None
    return f, float(0.5 * (res.max() + res.min()) - 0.5) % f, chance


def _whole_image_lattices(changes: np.ndarray, n: int, cell: float) -> list[tuple[float, float]]:
    """The lattices of a whole sprite enlarged to the whole axis that the colour changes sit
    on, as (cell, offset) with cell = ``n`` / the number of cells, for numbers near ``n`` /
    ``cell`` (the fit of :func:`_lattice_fit`).

    The fit only knows the cell to the changes' one-pixel quantisation: over 48 cells of 2.25 px
    it read 2.24-2.28, a whole pixel off at the far end, and cells read there took their
    neighbour's colour. A sprite enlarged as a whole (``resize`` by a viewer, an upscaler)
    spans the axis exactly, its lines at k * n / cells from pixel 0: every change lies within
    a pixel of its line (Pillow rounds to the nearer pixel, others start the cell after it)."""
    b = _boundaries(changes)
    eps = 1e-6
    found = []
    for cells in range(max(1, int(n / cell) - 2), int(n / cell) + 4):
        f = n / cells
        if abs(f - cell) > 0.05 * cell:
            continue
        res = b - np.round(b / f) * f
        if res.min() >= -0.5 - eps and res.max() <= 1.0 + eps and res.max() - res.min() <= 1.0 + eps:
            found.append((f, float(0.5 * (res.max() + res.min()) - 0.5) % f))
    return found


def _whole_image_pair(fx: tuple[float, float], fy: tuple[float, float], x_options: list, y_options: list):
    """The axes' lattices: the whole-image ones when each axis has one (of several that fit
    the changes, the pair of most nearly equal cells: a sprite is resized by one factor, and an
    axis with few changes fits several counts), else the fits as they are."""
    if not x_options or not y_options:
        return fx, fy
    return min(((ox, oy) for ox in x_options for oy in y_options),
               key=lambda p: (abs(p[0][0] - p[1][0]), abs(p[0][0] - fx[0]) + abs(p[1][0] - fy[0])))


def _exact_lattice_grid(frames: list[np.ndarray]) -> Grid | None:
    """Grid of a crisp enlargement by a non-integer factor (a 48 px sprite shown at 1024 px:
    cells of 21 and 22 px), whose colours change only on one lattice in every frame of
    ``frames`` (:func:`_lattice_fit`), else None. Its cells hold the sprite's own colours, kept
    exactly. Blur, noise or JPEG put changes everywhere, which fails the fit (at once, on a
    few rows and columns)."""
    h, w = frames[0].shape[:2]
    if h * w * len(frames) > 4096 * 4096:
        return None
    packed = [np.ascontiguousarray(a).view(np.uint32).reshape(h, w) for a in frames]
    # cheap rejection first: on such an enlargement no two neighbouring pixels of a row or a
    # column both start a cell, where noise makes them do so everywhere
    for p in packed:
        for chg in (p[:: max(1, h // 8), 1:] != p[:: max(1, h // 8), :-1],
                    (p[1:, :: max(1, w // 8)] != p[:-1, :: max(1, w // 8)]).T):
            if (chg[:, 1:] & chg[:, :-1]).any():
                return None
    colchg, rowchg = _changes(packed)
    fx, fy = _lattice_fit(colchg, w), _lattice_fit(rowchg, h)
    if fx is None or fy is None or fx[2] * fy[2] >= EXACT_LATTICE_CHANCE:
        return None
    fx, fy = _whole_image_pair(fx[:2], fy[:2], _whole_image_lattices(colchg, w, fx[0]),
                               _whole_image_lattices(rowchg, h, fy[0]))
    (cw, ox), (ch, oy) = fx, fy
    if max(cw / ch, ch / cw) > MAX_CELL_RATIO or max(cw, ch) > MAX_CELL:
        return None
    lines = []
    for cell, off, n, chg in ((cw, ox, w, colchg), (ch, oy, h, rowchg)):
        k0 = int(math.floor(-off / cell))
        k1 = int(math.ceil((n - off) / cell))
        x = off + cell * np.arange(k0, k1 + 1, dtype=np.float64)
        # border cells by the half-inside rule, as everywhere else
        while len(x) > 2 and 0.5 * (x[0] + x[1]) < 0:
            x = x[1:]
        while len(x) > 2 and 0.5 * (x[-2] + x[-1]) >= n:
            x = x[:-1]
        # a line where the colour changes is that change's pixel boundary: the cells then hold
        # exactly their own pixels (on the lattice alone, a 2-3 px cell's samples reached into
        # its neighbour); elsewhere both sides are one colour and the lattice places it
        b = _boundaries(chg)
        if b.size:
            hi = np.minimum(np.searchsorted(b, x), b.size - 1)
            lo = np.maximum(hi - 1, 0)
            near = np.where(np.abs(b[lo] - x) < np.abs(b[hi] - x), b[lo], b[hi])
            x = np.where(np.abs(near - x) <= 1.0, near, x)
        lines.append(x)
    xl, yl = lines
    return Grid(cell_w=cw, cell_h=ch, cols=len(xl) - 1, rows=len(yl) - 1, x_lines=xl, y_lines=yl,
                confidence=1.0, phase=(float(xl[0] % cw), float(yl[0] % ch)), source_size=(w, h), exact=True)


def _same_lattice(a: Grid | None, b: Grid) -> bool:
    """Whether ``a`` has ``b``'s lines (within half a pixel each)."""
    return (a is not None and len(a.x_lines) == len(b.x_lines) and len(a.y_lines) == len(b.y_lines)
            and bool(np.all(np.abs(a.x_lines - b.x_lines) < 0.5)) and bool(np.all(np.abs(a.y_lines - b.y_lines) < 0.5)))


def _stride(h: int, w: int) -> int:
    """Row (column) step of the edge maps: at most ``MAX_ANALYSIS_LINES`` rows and columns."""
    stride = 2 if max(h, w) > 256 else 1
    return max(stride, int(math.ceil(max(h, w) / MAX_ANALYSIS_LINES)))


def _grid_from_edges(ex, ey, w, h, cw, ch, tw, th, source, frames: list[np.ndarray] | None = None,
                     profiles: tuple[np.ndarray, np.ndarray] | None = None) -> Grid:
    """The grid from the edge maps; with ``frames`` (automatic mode) split cells are merged
    (:func:`_merge_split_cells`). ``profiles``: the maps' :func:`_axis_profile` (x, y) when
    already computed."""
    sx, sy = profiles if profiles is not None else (_axis_profile(ex, 0), _axis_profile(ey, 1))
    # the period is read from the edges' ridges, the lines from the full edge profile
    nx, ny = _axis_profile(ex, 0, ridges=True), _axis_profile(ey, 1, ridges=True)
    hint = est_x = est_y = None
    ridges = (nx, ny)
    if cw is None and ch is None and tw is None and th is None:
        (est_x, nx), (est_y, ny) = _consistent_estimates(nx, ny, sx, sy)
        hint = _square_hint(nx, ny, est_x, est_y)
    hint_x = hint_y = hint
    # axes that disagree beyond square-ish cells with no period both support: the weaker
    # spectrum (a short band of jittered rows over flat background) is the one that is off,
    # so it takes its own peak near the stronger axis's period
    if hint is None and est_x is not None and not _agree(est_x[0], est_y[0]) and min(est_x[0], est_y[0]) > 0:
        if est_x[1] >= est_y[1]:
            hint_y = est_x[0]
        else:
            hint_x = est_y[0]
    elif hint is None and est_x is not None and min(est_x[0], est_y[0]) > 0:
        # axes that agree: a near tie in the weaker spectrum goes to the square cell
        if est_x[1] >= est_y[1]:
            est_y = _nearly_square(ny, est_y, est_x[0])
        else:
            est_x = _nearly_square(nx, est_x, est_y[0])
    ax = _detect_axis(ex, 0, w, cell=cw, count=int(tw) if tw else None, sm=sx, hint=hint_x, spec=nx, est=est_x)
    ay = _detect_axis(ey, 1, h, cell=ch, count=int(th) if th else None, sm=sy, hint=hint_y, spec=ny, est=est_y)
    if est_x is not None:
        ax = _unpack_dense_lines(ax, (ex, 0, w, nx, est_x, hint_x))
        ay = _unpack_dense_lines(ay, (ey, 1, h, ny, est_y, hint_y))

    def read_x(p: float) -> _Axis:
        return _detect_axis(ex, 0, w, cell=None, count=None, sm=sx, hint=p, spec=nx, est=est_x)

    def read_y(p: float) -> _Axis:
        return _detect_axis(ey, 1, h, cell=None, count=None, sm=sy, hint=p, spec=ny, est=est_y)

    def read_x_at(p: float) -> _Axis:
        return _detect_axis(ex, 0, w, cell=p, count=None, sm=sx, spec=nx, est=est_x)

    def read_y_at(p: float) -> _Axis:
        return _detect_axis(ey, 1, h, cell=p, count=None, sm=sy, spec=ny, est=est_y)

    # each axis as read, its own estimate and the hint that steered it away (None: not steered)
    own = [(nx, est_x, hint_x), (ny, est_y, hint_y)]
    if est_x is not None:
        # an axis whose ridge estimate was traded for the full profile's, which agrees with the
        # other axis (2x wide cells: the full profile's second harmonic), was steered as well
        for i, ridge in enumerate(ridges):
            raw = estimate_period(ridge) if own[i][0] is not ridge else (0.0, 0.0)
            if raw[0] > 0:
                own[i] = (ridge, raw, raw[0])
    if frames is not None and (own[0][2] is not None or own[1][2] is not None):
        ax, ay = _own_periods(frames, (w, h), ax, ay, (ex, 0, w, sx) + own[0], (ey, 1, h, sy) + own[1])
    for _ in range(RETRY_ROUNDS if frames is not None and est_x is not None else 0):
        if _agree(ax.period, ay.period):
            break
        ax1, ay1 = _square_retry(frames, (w, h), ax, ay, (read_x, read_x_at), (read_y, read_y_at))
        if ax1 is ax and ay1 is ay:
            break
        ax, ay = ax1, ay1
    if frames is not None and est_x is not None and _agree(ax.period, ay.period):
        ax, ay = _peak_retry(frames, (w, h), ax, ay, read_x, read_y, (nx, ny), (sx, sy))
    if frames is not None:
        ax, ay = _split_margins(ax, sx, w), _split_margins(ay, sy, h)
        ax, ay = _square_counts(ax, sx, w, ay, sy, h)
    cols, rows = len(ax.lines) - 1, len(ay.lines) - 1
    if cols < 1 or rows < 1:
        raise NoGridFoundError(f"no pixel grid found in {source}")
    conf = float(min(ax.confidence, ay.confidence))
    if cw is None and tw is None and ch is None and th is None and conf < MIN_CONFIDENCE:
        raise NoGridFoundError(f"no pixel grid found in {source} (confidence {conf:.2f})")
    phase = (float(ax.lines[0] % ax.period), float(ay.lines[0] % ay.period))
    grid = Grid(
        cell_w=float(ax.period),
        cell_h=float(ay.period),
        cols=cols,
        rows=rows,
        x_lines=ax.lines,
        y_lines=ay.lines,
        confidence=conf,
        phase=phase,
        source_size=(w, h),
    )
    if frames is not None:
        axes = ((ex, w, sx, nx, est_x), (ey, h, sy, ny, est_y))
        grid = _merge_split_cells(frames, grid, axes)
        if est_x is not None:
            grid = _estimate_retry(frames, grid, axes, ridges + (sx, sy), read_x, read_y)
    return grid


def _estimate_retry(frames: list[np.ndarray], grid: Grid, axes, profiles: tuple[np.ndarray, ...], read_x, read_y) -> Grid:
    """``grid``, or the grid read on both axes at a finer period that one axis's own spectrum
    (the ridge or full edge ``profiles`` of x and y) puts forward, when one colour per cell of
    that reading explains the frames far better.

    On a sprite with few strong edges (a parquet floor, a shaded crate, a tile drawn in
    low-contrast grain) one axis's spectrum holds the cells while the other's, and the pairing
    of the two, follow the art's motif: planks or blocks 1.5-8 cells long. Every retry before
    this starts from the period the pairing chose, so the cells that one axis saw are never
    read on both. Unless ``grid``'s cells are already flat to within ``FINER_NOISE`` of the
    pixel noise, each such period at least ``FINER_RETRY`` times finer than ``grid``'s cells
    (and not an enlarged JPEG's block period) is read on both axes, square, the margins split
    as for ``grid``; the reading is kept when it fits better on :func:`_fits_better`'s terms
    for finer cells, its cells hold their colours as pseudo pixels do (R^2 at least
    ``FLAT_R2_MIN``), and they would not merge back in pairs (:func:`_merge_split_cells`):
    halves of the cells are as flat as the cells, and flatter where an image draws a faint
    grid of its own inside them.
    A motif that outbids the cells on every profile leaves them a lesser peak of a ridge
    profile, which is read too (:func:`_far_candidates`, kept only far flatter: ``FAR_FLAT``).
    ``axes``: x's and y's arguments for :func:`_detect_axis` (edge map, length, profile,
    period profile, estimate); ``read_x`` / ``read_y`` detect that axis starting from a period.
    """
    finest = min(grid.cell_w, grid.cell_h) / FINER_RETRY
    periods: list[float] = []
    for prof in profiles:
        p = _profile_period(prof)[0]
        if not 0 < p < finest or _among(p, periods):
            continue
        if _block_period(p) is not None:  # an enlarged JPEG's block edges, not cells
            continue
        periods.append(p)
    far = _far_candidates(profiles[:2], grid, periods)
    if not periods and not far:
        return grid
    base = _lattice_score(frames, grid)
    if base[1] <= FINER_NOISE:
        return grid
    if _not_pixel_art(base) is not None:
        # a motif's reading holds the colours as blocks; one that holds none is no motif's,
        # and a far peak's cells would only pass it on to a lattice that holds some
        far = []
    (_, w, sx, _, _), (_, h, sy, _, _) = axes
    tries = []
    for p in periods + far:
        try:
            ax, ay = read_x(p), read_y(p)
        except NoGridFoundError:
            continue
        if not _agree(ax.period, ay.period) or max(ax.period, ay.period) >= finest:
            continue
        ax, ay = _split_margins(ax, sx, w), _split_margins(ay, sy, h)
        r, n, q = _pair_score(frames, (w, h), ax, ay)
        # the cells must hold their colours as pseudo pixels do, not just better than a
        # lattice of tiles over art at its true resolution (R^2 0.13 there, 0.76 on its bricks)
        if q < FLAT_R2_MIN or not _fits_better((r, n, q), base, finer=True):
            continue
        if p in far and n > FAR_FLAT * base[1]:
            continue
        found = _grid_of(ax, ay, grid)
        if _merge_split_cells(frames, found, axes) is found:
            tries.append((n, found))
    return min(tries, key=lambda t: t[0])[1] if tries else grid


def _among(p: float, periods: list[float]) -> bool:
    """Whether the period ``p`` is within 3 % of one of ``periods`` (already read)."""
    return any(abs(math.log(p / q)) < 0.03 for q in periods)


def _far_candidates(ridges: tuple[np.ndarray, ...], grid: Grid, periods: list[float]) -> list[float]:
    """For each ridge profile of ``ridges``, the strongest of its :func:`_far_peaks` under
    ``grid``'s cells over ``FAR_FINER`` that is none of ``periods`` (nor of those taken before
    it), no enlarged JPEG's block period and not half of ``grid``'s cells (``HALF_CELL``)."""
    coarsest = min(grid.cell_w, grid.cell_h) / FAR_FINER
    far: list[float] = []
    for prof in ridges:
        for p in _far_peaks(prof, coarsest):
            if _among(p, periods + far) or _block_period(p) is not None:
                continue
            if any(abs(math.log(2.0 * p / c)) < HALF_CELL for c in (grid.cell_w, grid.cell_h)):
                continue
            far.append(p)
            break
    return far


def _far_peaks(profile: np.ndarray, coarsest: float) -> Iterator[float]:
    """Periods (source px, ``MIN_CELL`` up to ``coarsest``) of the peaks of ``profile``'s
    spectrum that reach ``FAR_PEAK`` of its highest over the periods a grid may have, the
    strongest first, each refined only when asked for."""
    n = len(profile)
    nfft = _nfft(n)
    spec = _spectrum(profile, nfft)
    lo = int(math.floor(nfft / min(n / 2.0, _longest_cell(n))))
    hi = min(int(math.ceil(nfft / MIN_CELL)), len(spec) - 2)
    if hi <= lo + 2:
        return iter(())
    floor = FAR_PEAK * float(spec[lo : hi + 1].max())
    k0 = max(lo + 1, int(math.ceil(nfft / coarsest)))
    if k0 > hi:
        return iter(())
    mid = spec[k0 : hi + 1]
    ks = np.nonzero((mid > spec[k0 - 1 : hi]) & (mid >= spec[k0 + 1 : hi + 2]) & (mid >= floor))[0] + k0
    ks = ks[np.argsort(-spec[ks], kind="stable")]
    return (1.0 / _refine_frequency(profile, k / nfft, 1.0 / nfft) for k in ks)


def _split_margins(found: _Axis, profile: np.ndarray, length: int) -> _Axis:
    """``found``, or the same axis with its flat margins' cells shared out between the two
    sides by the margins' own mean cell size.

    Beyond the art's first and last lines on edges (``profile``'s crests) the cells are
    continued at the period the art was read with, and each border decided on its own. On a
    grid whose cell size drifts across the image that period is not the margins': counted with
    it, one margin gains a cell that the other loses, and the whole sprite comes out one column
    off at the right size. The total is the better-supported number (both borders and the size
    prior decided it); together the margins span a known number of pixels, so their own mean
    cell size is known, and it places the split. It moves only when the art's period puts the
    left side's count more than ``0.5 + MARGIN_SPLIT_SLACK`` cells off that: a border cell
    that the image edge cuts also shifts the mean a little (0.45 cell at most in snap-dev).
    The margins' lines are then spaced evenly from the art's outer lines to the image edges.
    """
    mg = _margins(found, profile, length)
    if mg is None or mg.cells < 2 or mg.left_px <= 0 or mg.right_px <= 0:
        return found
    pm = (mg.left_px + mg.right_px) / mg.cells
    if abs(pm / found.period - 1.0) > 0.15:
        return found
    if abs(mg.left_px / pm - mg.first) <= 0.5 + MARGIN_SPLIT_SLACK:
        return found
    lines = np.asarray(found.lines, dtype=np.float64)
    return _Axis(lines=_spread_margins(lines, mg, mg.cells), period=found.period, confidence=found.confidence)


@dataclasses.dataclass(frozen=True)
class _Margins:
    """The flat margins of one axis's lines: the first and last line on an edge (indices), the
    px from the image's start to the first and from the last to its end, and the cells there."""

    first: int
    last: int
    left_px: float
    right_px: float
    cells: int


def _margins(found: _Axis, profile: np.ndarray, length: int) -> _Margins | None:
    """The margins of ``found``'s lines beyond the art's first and last lines on edges
    (``profile``'s crests), or None when fewer than two lines are on edges."""
    lines = np.asarray(found.lines, dtype=np.float64)
    ev = _on_crests(_normalise_evidence(profile), profile)
    support = _evidence_at(ev, lines) >= ON_EDGE
    if support.sum() < 2:
        return None
    first = int(np.argmax(support))
    last = len(lines) - 1 - int(np.argmax(support[::-1]))
    ml, mr = float(lines[first]), float(length - lines[last])
    return _Margins(first, last, ml, mr, first + (len(lines) - 1 - last))


def _spread_margins(lines: np.ndarray, mg: _Margins, cells: int) -> np.ndarray:
    """``lines`` with ``cells`` cells over ``mg``'s margins, shared out between the two sides by
    their mean size and spaced evenly from the art's outer lines to the image's edges."""
    pm = (mg.left_px + mg.right_px) / cells
    left = int(np.clip(round(mg.left_px / pm), 0, cells))
    right = cells - left
    return np.concatenate([lines[mg.first] - (mg.left_px / max(left, 1)) * np.arange(left, 0, -1),
                           lines[mg.first:mg.last + 1],
                           lines[mg.last] + (mg.right_px / max(right, 1)) * np.arange(1, right + 1)])


def _square_counts(ax: _Axis, sx: np.ndarray, w: int, ay: _Axis, sy: np.ndarray, h: int) -> tuple[_Axis, _Axis]:
    """The axes ``ax``, ``ay`` (read on the edge profiles ``sx``, ``sy`` of a ``w`` x ``h``
    image), or the same with one axis's flat margins re-divided into one cell more or fewer so
    that both count the same cells.

    Beyond the art's outer lines on edges, a margin of flat background says nothing of its
    cells; their count follows from the cell size it is continued at, and a grid that drifts
    4-8 % across the image (diffusion output does) leaves a wide margin's count a cell off either
    way. Sprite canvases are square far more often than not (16, 32, 48, 64 cells), and a
    square image of square pseudo pixels has as many cells across as down. So when the two
    counts differ by one, one of them a multiple of ``SIZE_PRIOR_MULTIPLE``, on square-ish cells
    (``SQUARE_COUNT_ASPECT``), the other axis's margins, if together they hold at least
    ``SQUARE_COUNT_MARGIN`` cells, are re-divided to reach it, provided their mean cell then
    stays within ``SQUARE_COUNT_DRIFT`` of the art's mean cell. The margins' lines are spaced
    evenly over each side, the cells split between the sides by their mean size (as
    :func:`_split_margins` does).
    """
    cols, rows = len(ax.lines) - 1, len(ay.lines) - 1
    if not SIZE_PRIOR_MULTIPLE or abs(cols - rows) != 1 or (cols % SIZE_PRIOR_MULTIPLE and rows % SIZE_PRIOR_MULTIPLE):
        return ax, ay
    if max(ax.period, ay.period) > SQUARE_COUNT_ASPECT * min(ax.period, ay.period):
        return ax, ay
    moved, prof, length, target = (ax, sx, w, rows) if rows % SIZE_PRIOR_MULTIPLE == 0 else (ay, sy, h, cols)
    mg = _margins(moved, prof, length)
    if mg is None or mg.cells < SQUARE_COUNT_MARGIN:
        return ax, ay
    cells = mg.cells + target - (len(moved.lines) - 1)
    lines = np.asarray(moved.lines, dtype=np.float64)
    art = float(lines[mg.last] - lines[mg.first]) / (mg.last - mg.first)
    if cells < 2 or abs((mg.left_px + mg.right_px) / cells / art - 1.0) > SQUARE_COUNT_DRIFT:
        return ax, ay
    new = _Axis(lines=_spread_margins(lines, mg, cells), period=moved.period, confidence=moved.confidence)
    return (new, ay) if moved is ax else (ax, new)


def _lines_to_crests(grid: Grid, profiles: tuple[np.ndarray, np.ndarray]) -> Grid:
    """``grid`` with its lines on edges moved to the crests of the edge ``profiles`` (x, y)
    it was found on (:func:`_on_edge_crests`). Done once the grid is decided: the checks that
    decide it (cells flat, smooth or not) judge the lines as the line search drew them."""
    sx, sy = profiles
    return dataclasses.replace(grid, x_lines=_on_edge_crests(grid.x_lines, sx, grid.cell_w),
                               y_lines=_on_edge_crests(grid.y_lines, sy, grid.cell_h),
                               flat_border=_flat_border(grid.x_lines, sx) + _flat_border(grid.y_lines, sy))


def _flat_border(lines: np.ndarray, profile: np.ndarray) -> tuple[int, int]:
    """Cells before the first and after the last of ``lines`` that sits on an edge
    (normalised evidence of ``profile`` at least ``ON_EDGE``); all of them when none does."""
    cells = len(lines) - 1
    on = np.nonzero(_lines_on_edges(np.asarray(lines, dtype=np.float64), profile)[1])[0] if len(profile) else []
    if cells < 1 or len(on) == 0:
        return cells, cells
    return int(on[0]), int(cells - on[-1])


def _lines_on_edges(x: np.ndarray, profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest profile index of each line, whether the line lies inside the profile on an
    edge: normalised evidence at least ``ON_EDGE``). ``profile`` must not be empty."""
    n = len(profile)
    at = np.clip(np.round(x).astype(np.intp), 0, n - 1)
    return at, (_normalise_evidence(profile)[at] >= ON_EDGE) & (x >= 0) & (x <= n - 1)


def _on_edge_crests(lines: np.ndarray, profile: np.ndarray, period: float, reach: float = LINE_REFINE) -> np.ndarray:
    """``lines`` with each inner line that sits on an edge (normalised evidence of
    ``profile`` at least ``ON_EDGE``) moved to the crest of ``profile`` (to a fraction of a
    pixel) within ``reach`` periods of it and a pixel short of half way to either neighbour.

    The count and numbering of the lines are decided; only where each cell's colour is read
    changes. The line search pays for uneven gaps, so on a jittered grid it stops short of
    the edge's crest (0.37 px off on average on 6-14 px cells with +-2 px jitter, 0.15 px
    after this), and on 6-7 px cells the sampled interior is only ~3 px wide.
    """
    x = np.asarray(lines, dtype=np.float64)
    n = len(profile)
    if len(x) < 3 or n == 0 or reach <= 0:
        return x
    inner = x[1:-1]
    at, on = _lines_on_edges(inner, profile)
    r = reach * period
    lo = np.ceil(np.maximum(inner - r, 0.5 * (x[:-2] + inner) + 1.0))
    hi = np.floor(np.minimum(inner + r, 0.5 * (inner + x[2:]) - 1.0))
    span = int(max(0.0, float((hi - lo).max()))) + 1
    idx = lo[:, None] + np.arange(span)[None, :]
    valid = (idx <= hi[:, None]) & (idx >= 0) & (idx <= n - 1)
    vals = np.where(valid, profile[np.clip(idx, 0, n - 1).astype(np.intp)], -np.inf)
    best = np.argmax(vals, axis=1)
    peak = vals[np.arange(len(inner)), best]
    move = on & (hi >= lo) & (peak > profile[at])
    # (a line with no valid position in reach does not move; its index must still be one)
    j = np.clip(idx[np.arange(len(inner)), best], 0, n - 1).astype(np.intp)
    # the crest between pixels: the vertex of the parabola through the peak and its neighbours
    left, mid, right = profile[np.clip(j - 1, 0, n - 1)], profile[j], profile[np.clip(j + 1, 0, n - 1)]
    curve = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        # only at a true crest: a line stopped at the edge of its reach is on a slope
        off = np.where((curve < 0) & (mid >= left) & (mid >= right), 0.5 * (left - right) / curve, 0.0)
    out = x.copy()
    out[1:-1] = np.where(move, j + np.clip(off, -0.5, 0.5), inner)
    return out


def _near_peaks(profile: np.ndarray, period: float) -> list[float]:
    """Periods (source px) of the strongest two other peaks of ``profile``'s spectrum within
    ``PEAK_NEAR`` of ``period`` (and more than ``PEAK_MIN`` from it), each at least
    ``PEAK_HEIGHT`` of the spectrum at ``period``: where a content motif can outbid the cells."""
    nfft = _nfft(len(profile))
    spec = _spectrum(profile, nfft)
    lo = max(2, int(nfft / (period * (1.0 + PEAK_NEAR))))
    hi = min(len(spec) - 2, int(nfft / (period * (1.0 - PEAK_NEAR))) + 1)
    k0 = int(round(nfft / period))
    floor = PEAK_HEIGHT * float(spec[max(0, k0 - 1) : k0 + 2].max())
    found = []
    for k in range(lo, hi + 1):
        if spec[k] >= spec[k - 1] and spec[k] >= spec[k + 1] and spec[k] >= floor:
            p = 1.0 / _refine_frequency(profile, k / nfft, 1.0 / nfft)
            if abs(p - period) > PEAK_MIN * period:
                found.append((float(spec[k]), p))
    return [p for _, p in sorted(found, reverse=True)[:2]]


def _lattice_misfit(lines: np.ndarray, profile: np.ndarray) -> float:
    """RMS distance (periods) of the lines that sit on edges of ``profile`` from one smooth
    lattice through them, each line at its own index; NaN with fewer than 6 such lines.

    Lines found on a period a few percent off the cells' still land on the edges where the
    image is detailed, but the flat stretches between them get a cell too many or too few, so
    the indices jump: such lines are off any lattice by a large part of a cell. A quadratic
    index-to-position fit leaves room for a grid that drifts.
    """
    on = _evidence_at(_normalise_evidence(profile), lines) >= ON_EDGE
    if on.sum() < 6:
        return float("nan")
    k = np.arange(len(lines), dtype=np.float64)[on]
    fit = np.polyfit(k, lines[on], 2)
    slope = float(np.polyval(np.polyder(fit), k.mean()))
    res = lines[on] - np.polyval(fit, k)
    return float(np.sqrt(np.mean(res**2)) / slope) if slope > 0 else float("nan")


def _pair_score(frames: list[np.ndarray], size: tuple[int, int], ax: _Axis, ay: _Axis) -> tuple[float, float, float]:
    """(:func:`_phase_ratio`, noise ratio, R^2 of :func:`_cell_flatness`) of the grid of ``ax``, ``ay``."""
    w, h = size
    g = Grid(cell_w=ax.period, cell_h=ay.period, cols=len(ax.lines) - 1, rows=len(ay.lines) - 1,
             x_lines=ax.lines, y_lines=ay.lines, confidence=1.0, phase=(0.0, 0.0), source_size=(w, h))
    return _lattice_score(frames, g)


#: Within one automatic detection (one set of frames), the scores of the lattices already
#: tried, by their lines: the final check of the chosen grid is then read, not computed again
#: (4 ms of a 50 ms snap where a retry scored the grid that won); and each frame's sparse
#: pixels and pixel noise (:func:`_sparse_pixels`, :func:`_pixel_noise`), by the frame's id
#: while the frames are alive. Per context, so concurrent snaps in threads never share one.
_SCORES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("dgx_pixels_grid_scores", default=None)


def _lattice_score(frames: list[np.ndarray], grid: Grid) -> tuple[float, float, float]:
    """(:func:`_phase_ratio`, noise ratio, R^2 of :func:`_cell_flatness`) of ``grid``'s lines."""
    def score() -> tuple[float, float, float]:
        d = list(_recon_diffs(frames, grid.x_lines, grid.y_lines))
        return (_phase_ratio(frames, grid, d),) + _cell_flatness(frames, grid, d)

    return _memo((np.asarray(grid.x_lines).tobytes(), np.asarray(grid.y_lines).tobytes()), score)


def _memo(key, compute):
    """``compute()``, read from this detection's memo (:data:`_SCORES`) when it was already
    made there under ``key``, and kept there if not; outside a detection, just computed."""
    memo = _SCORES.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _peak_retry(frames: list[np.ndarray], size: tuple[int, int], ax: _Axis, ay: _Axis, read_x, read_y,
                spectra: tuple[np.ndarray, np.ndarray], profiles: tuple[np.ndarray, np.ndarray]) -> tuple[_Axis, _Axis]:
    """The axes ``ax``, ``ay`` (periods that agree), or one of them read again from another
    peak of its spectrum near its period when its lines on edges do not form a lattice.

    A motif of the art can put a spectral peak a few percent off the cells' (a mountain range
    whose ridges repeat every ~1.1 cells); the lines found from it still sit on the detailed
    parts' edges, so the colours hardly tell the readings apart, but between those parts the
    count goes wrong and the lines on edges fall off any lattice (:func:`_lattice_misfit`).
    A reading from a nearby peak (:func:`_near_peaks` of the ridge ``spectra``) replaces an
    axis whose misfit is at least ``MISFIT_BAD`` when its own misfit is at most
    ``MISFIT_GAIN`` of that, its cells are flatter and the half-cell shift costs it no less
    (within ``RETRY_MARGIN``). ``read_x`` / ``read_y`` detect an axis from a given period.
    """
    base = None
    tries = []
    for read, spec, prof, cur, other in ((read_x, spectra[0], profiles[0], ax, ay),
                                         (read_y, spectra[1], profiles[1], ay, ax)):
        bad = _lattice_misfit(cur.lines, prof)
        if not bad >= MISFIT_BAD:  # NaN too: too few lines on edges to tell
            continue
        for p in _near_peaks(spec, cur.period):
            try:
                new = read(p)
            except NoGridFoundError:
                continue
            if len(new.lines) == len(cur.lines) or not _agree(new.period, other.period):
                continue
            misfit = _lattice_misfit(new.lines, prof)
            if not misfit <= MISFIT_GAIN * bad:
                continue
            pair = (new, ay) if cur is ax else (ax, new)
            base = base or _pair_score(frames, size, ax, ay)
            r, n, _ = _pair_score(frames, size, *pair)
            if r < base[0] + RETRY_MARGIN and n < base[1]:
                tries.append((misfit, pair))
    return min(tries, key=lambda t: t[0])[1] if tries else (ax, ay)


def _own_periods(frames: list[np.ndarray], size: tuple[int, int], ax: _Axis, ay: _Axis, args_x: tuple,
                 args_y: tuple) -> tuple[_Axis, _Axis]:
    """The axes ``ax``, ``ay``, read with a period hint that steered one or both towards square
    cells, or the axes read again at their own spectral estimates when those explain the
    frames better.

    Pseudo pixels are nearly square, so axes whose spectra disagree are steered together
    (:func:`_consistent_estimates`, :func:`_square_hint`, or the weaker axis towards the
    stronger); but art drawn with wide or
    tall pixels, or an image stretched to another aspect ratio, has cells 1.3-2x as tall as
    wide, and squaring them cuts every cell or counts a stretch of cells wrong. The own reading
    wins on :func:`_square_retry`'s terms (lower phase ratio, flatter cells, R^2 no lower), or,
    when its periods are whole multiples of the square ones, on a lower phase ratio alone with
    the flatness held within a tolerance: halves of a cell are as flat as the cell, never
    less, so the square reading always looks a little flatter. ``args_x`` / ``args_y``: (edge
    map, axis, length, profile, period profile, own estimate, the hint it was read with, None
    for an axis that was not steered).
    """
    def own(args) -> _Axis | None:
        e, axis, length, sm, spec, est, hint = args
        if hint is None:
            return None
        try:
            found = _detect_axis(e, axis, length, cell=None, count=None, sm=sm, hint=None, spec=spec, est=est)
            return _unpack_dense_lines(found, (e, axis, length, spec, est, None))
        except NoGridFoundError:
            return None

    pair = (own(args_x) or ax, own(args_y) or ay)
    if len(pair[0].lines) == len(ax.lines) and len(pair[1].lines) == len(ay.lines):
        return ax, ay  # the same cells, read from a period a hair apart
    base = _pair_score(frames, size, ax, ay)
    r, n, q = _pair_score(frames, size, *pair)
    if _fits_better((r, n, q), base):
        return pair
    multiple = all(abs(a.period / b.period - round(a.period / b.period)) < 0.05 for a, b in zip(pair, (ax, ay)))
    if multiple and base[0] < OWN_MULT_BASE and r < base[0] - OWN_MULT_GAIN \
            and n < base[1] * (1.0 + OWN_MULT_FLAT) and q >= base[2] - OWN_MULT_R2:
        return pair
    return ax, ay


def _square_retry(frames: list[np.ndarray], size: tuple[int, int], ax: _Axis, ay: _Axis, reads_x, reads_y) -> tuple[_Axis, _Axis]:
    """The axes ``ax``, ``ay`` (periods that disagree beyond ``SQUARE_TOLERANCE``), or one of
    them read again from the other's period when that reading explains the frames better.

    Pseudo pixels are nearly square: axes more than 10 % apart mostly mean that one of them
    followed a content period (a motif a few cells wide) or half the cell (jittered 8 px cells
    read as 5 px). ``reads_x`` / ``reads_y`` detect that axis again from a given period.
    A new reading is kept only when one colour per cell fits better on every count: the
    half-cell shift costs more (:func:`_phase_ratio` lower by ``RETRY_MARGIN``), and the
    cells are flatter (:func:`_cell_flatness`: lower noise ratio, R^2 no lower). Cells that
    really are 10-35 % non-square read the same lines from either start, or fit worse. A long
    axis read again at the short one's period is also kept when its cells come out far
    flatter (``SQUARE_FLAT``), even if the phase ratio rises: on a small sprite with few edges
    a period several cells long can shift worse by half a cell than the true one does.

    ``reads_x`` / ``reads_y``: (read from a hinted period, read at a given cell size). The
    hinted read takes its own spectrum's peak near the hint; where that brings back the same
    lines (no peak there: 8.1 px cells read as 7.0 px, jittered by up to 2 px, had none near
    the rows' 7.9 px) while the other axis moved, the axis is read at the other's period as
    given, and kept only on the margins of every count. Returns the best such pair, or
    ``(ax, ay)`` itself.
    """
    base = None  # scored only when a reading differs: cells that are truly non-square read the same lines
    tries = []
    axes = ((reads_x, ay.period, False), (reads_y, ax.period, True))

    def paired(new: _Axis, keep_x: bool) -> tuple[_Axis, _Axis]:
        return (ax, new) if keep_x else (new, ay)

    def moved(pair: tuple[_Axis, _Axis] | None) -> bool:
        return pair is not None and (len(pair[0].lines) != len(ax.lines) or len(pair[1].lines) != len(ay.lines))

    hinted = []
    for (read, _), other, keep_x in axes:
        try:
            hinted.append(paired(read(other), keep_x))
        except NoGridFoundError:
            hinted.append(None)
    for i, ((_, read_at), other, keep_x) in enumerate(axes):
        pair, given = hinted[i], False
        # an axis that stayed is read at the other's period as given only where the other moved:
        # cells that really are non-square (a real image's 17.6 x 19.4 px) stay from either start
        if pair is not None and not moved(pair) and moved(hinted[1 - i]):
            try:
                pair, given = paired(read_at(other), keep_x), True
            except NoGridFoundError:
                continue
        if not moved(pair):
            continue
        finer = other < (ay.period if keep_x else ax.period) / SQUARE_TOLERANCE
        base = base or _pair_score(frames, size, ax, ay)
        r, n, q = _pair_score(frames, size, *pair)
        if _fits_better((r, n, q), base) if given else _fits_better((r, n, q), base, finer, _agree(pair[0].period, pair[1].period)):
            tries.append((r, pair))
    return min(tries, key=lambda t: t[0])[1] if tries else (ax, ay)


def _fits_better(score: tuple[float, float, float], base: tuple[float, float, float], finer: bool = False,
                 squares: bool = False) -> bool:
    """Whether a retried reading of this :func:`_lattice_score` explains the frames better than
    the reading of ``base``: on every count (a phase ratio lower by ``RETRY_MARGIN``, flatter
    cells, R^2 no lower), or, for cells ``finer`` than the base's, far flatter (``SQUARE_FLAT``)
    with R^2 no lower under a phase ratio that is clearly a grid's, where the base itself held
    the colours: a lattice several cells long can shift worse by half a cell than the true one.

    A reading that ``squares`` the cells (its two axes within ``SQUARE_TOLERANCE`` where the
    base's were not) needs no margin: no worse on any count and flatter is enough, since
    pseudo pixels are square. Jittered cells of 6.6 px whose x axis was read at 8.5 px came
    back 32 columns wide from the retry at the rows' period, phase ratio 0.795 for 0.798,
    noise ratio 1.42 for 1.52, R^2 0.983 for 0.978, and the margins turned that down."""
    r, n, q = score
    if r < base[0] - RETRY_MARGIN and n < base[1] and q >= base[2]:
        return True
    if squares and r <= base[0] and n < base[1] and q >= base[2]:
        return True
    return finer and not _not_pixel_art(base) and n < SQUARE_FLAT * base[1] and q >= base[2] and r < SQUARE_FLAT_PHASE


def _grid_from_kinks(frames: list[np.ndarray], w: int, h: int, stride: int, source: str) -> Grid:
    """The grid of a smooth enlargement (see :func:`_smoothness`): the lattice of its cells'
    centres, found on the curvature maps (:func:`_kink_maps`) as any grid is on the edge maps,
    and the cell boundaries half way between them.

    A sprite with transparency is read twice, with its silhouette's curvature and without it
    (fully opaque pixels only), and the reading whose colours change most at its lines wins
    (lowest :func:`_phase_ratio`). Enlarged with its alpha, the silhouette is a ramp like any
    other that bends at the cells' centres; cut out of its background by a matte keyed on the
    colour, it bends wherever the matte cuts the ramps, off the lattice (200 such cut-outs:
    40 % exact read with it, 84 % without, 81 % choosing).
    """
    grids, failure = [], None
    for opaque in (False, True) if _has_transparency(frames[0]) else (False,):
        try:
            kx, ky = _summed_maps(frames, stride, functools.partial(_kink_maps, opaque_only=opaque))
            centres = _grid_from_edges(kx, ky, w, h, None, None, None, None, source)
            xl = _lines_around(centres.x_lines, w, centres.cell_w, source)
            yl = _lines_around(centres.y_lines, h, centres.cell_h, source)
            grid = Grid(cell_w=centres.cell_w, cell_h=centres.cell_h, cols=len(xl) - 1, rows=len(yl) - 1, x_lines=xl,
                        y_lines=yl, confidence=centres.confidence,
                        phase=(float(xl[0] % centres.cell_w), float(yl[0] % centres.cell_h)), source_size=(w, h),
                        smooth=True)
            grids.append(_check_cells_hold_colours(frames, grid, source))
        except NoGridFoundError as exc:
            failure = exc
    if not grids:
        raise failure
    return min(grids, key=lambda g: _phase_ratio(frames, g)) if len(grids) > 1 else grids[0]


def _lines_around(centres: np.ndarray, n: int, period: float, source: str) -> np.ndarray:
    """Cell boundaries for the cells centred on ``centres`` (continued a cell past each end)
    whose centre lies in the image (0..n source px): a cut cell counts when more than half of
    it is inside, as everywhere."""
    c = np.asarray(centres, dtype=np.float64)
    c = np.concatenate([[c[0] - period], c, [c[-1] + period]])
    c = c[(c >= 0) & (c < n)]
    if len(c) < 2:
        raise NoGridFoundError(f"no pixel grid found in {source}")
    mid = 0.5 * (c[:-1] + c[1:])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def detect_grid_batch(frames, *, cell: float | None = None, cell_w: float | None = None, cell_h: float | None = None,
                      width: int | None = None, height: int | None = None) -> Grid:
    """One grid shared by all ``frames`` (animation frames must share it).

    The frames' edge evidence is summed, so a line visible in any frame counts. All frames
    must have the same size (``InputImageError`` names the first that differs). Overrides as
    in :func:`detect_grid`.
    """
    frames = list(frames)
    if not frames:
        raise InputImageError("no frames given (empty batch)")
    arrs = [_validate(f, f"frame {i}") for i, f in enumerate(frames)]
    h, w = arrs[0].shape[:2]
    for i, a in enumerate(arrs):
        if a.shape[:2] != (h, w):
            raise InputImageError(f"frame {i} is {a.shape[1]}x{a.shape[0]} but frame 0 is {w}x{h}",
                                  hint="frames that share a grid must have one size")
    if len(arrs) == 1:
        return detect_grid(arrs[0], cell=cell, cell_w=cell_w, cell_h=cell_h, width=width, height=height)
    views = [_detection_view(a) for a in arrs]
    return _detect(views, _checked_overrides(w, h, cell, cell_w, cell_h, width, height), "the frames")


def frame_grids(frames, **overrides) -> list[Grid]:
    """One grid per frame, of one size: the grid all ``frames`` share (:func:`detect_grid_batch`)
    or, when their lattices are out of phase, each frame's own lines at that shared size.

    Frames drawn one by one by a model rarely sit on one lattice to the pixel. Summed, the
    edges of two lattices half a cell apart read as one of half the cell, and every frame came
    back at double resolution. So in automatic mode the shared grid must agree with frame 0's
    own (cell sizes within ``SQUARE_TOLERANCE``); when it does not, every frame is read alone
    at frame 0's number of columns and rows.
    """
    frames = list(frames)
    shared = detect_grid_batch(frames, **overrides)
    if len(frames) < 2 or any(v is not None for v in overrides.values()) or shared.confidence >= 1.0:
        return [shared] * len(frames)
    try:
        own = detect_grid(frames[0], source="frame 0")
    except NoGridFoundError:
        return [shared] * len(frames)  # a faint frame 0: the frames together are the better judge
    if _agree(own.cell_w, shared.cell_w) and _agree(own.cell_h, shared.cell_h):
        return [shared] * len(frames)
    return [own] + [detect_grid(f, width=own.cols, height=own.rows, source=f"frame {i}")
                    for i, f in enumerate(frames[1:], 1)]


def off_grid(rgba: np.ndarray, grid: Grid) -> str | None:
    """Why ``rgba`` ((H, W, 4) uint8, the size ``grid`` was found on) is no pseudo pixel art on
    ``grid`` (its colours ignore the grid's lines, or vary inside its cells, as
    :func:`detect_grid` judges a lattice), else None.

    For the frames of a batch snapped on the grid they share: the frames together decided it,
    and one frame that is no pixel art on it (a stray picture, another scale or phase) would
    come back as noise without a word. A blank frame has no lines to miss and passes; so does
    a grid read off whole-pixel blocks."""
    if grid.exact:
        return None
    return _not_pixel_art(_lattice_score([_detection_view(_validate(rgba, "frame"))], grid), "its grid")


def snap_batch(frames, grid: Grid | None = None, **kwargs) -> list[SnapResult]:
    """Snap every frame at one size: on ``grid`` when given, else on :func:`frame_grids`.

    A frame that is no pixel art on its grid (:func:`off_grid`) is still snapped on it, and its
    result says why in ``off_grid``.

    The frames are one animation, so they get one set of colours
    (:func:`~comfy_nodes.pixel.cells.shared_frame_colours`): each frame's colours are read
    afresh, a level or two apart from the last frame's, and would flicker. Frames read off
    whole-pixel blocks (every grid exact) keep their own colours, near shades included.
    """
    frames = list(frames)
    overrides = {k: kwargs.pop(k) for k in ("cell", "cell_w", "cell_h", "width", "height") if k in kwargs}
    grids = [grid] * len(frames) if grid is not None else frame_grids(frames, **overrides)
    out = []
    for i, (f, g) in enumerate(zip(frames, grids)):
        a = _validate(f, f"frame {i}")
        if a.shape[:2] != (g.source_size[1], g.source_size[0]):
            raise InputImageError(f"frame {i} is {a.shape[1]}x{a.shape[0]}, the grid was found on "
                                  f"{g.source_size[0]}x{g.source_size[1]}")
        r = snap(a, g, source=f"frame {i}", **kwargs)
        why = off_grid(a, g) if len(frames) > 1 else None
        out.append(dataclasses.replace(r, off_grid=why) if why else r)
    if len(out) > 1 and not all(r.grid.exact for r in out):
        shared = shared_frame_colours([r.image for r in out])
        out = [dataclasses.replace(r, image=img) for r, img in zip(out, shared)]
    return out


def snap(
    rgba: np.ndarray,
    grid: Grid | None = None,
    *,
    cell: float | None = None,
    cell_w: float | None = None,
    cell_h: float | None = None,
    width: int | None = None,
    height: int | None = None,
    background: str = "keep",
    bg_tolerance: float = 0.06,
    bg_holes: int = 0,
    source: str = "image",
) -> SnapResult:
    """Snap pseudo pixel art to its true resolution.

    With ``grid`` given it is used as is; otherwise :func:`detect_grid` runs with the same
    overrides. ``background``: ``"keep"`` (input alpha, binarised) or ``"transparent"``
    (the border-connected background colour becomes transparent, via
    ``comfy_nodes.pixel.cleanup.remove_background`` with ``bg_tolerance``; enclosed regions
    of the background colour of at least ``bg_holes`` true pixels go too, 0 keeps them).
    Returns a :class:`SnapResult` whose ``image`` is (rows, cols, 4) uint8.
    """
    if background not in ("keep", "transparent"):
        raise InvalidArgumentError(f"background must be 'keep' or 'transparent', got {background!r}")
    a = _validate(rgba, source)
    if grid is None:
        grid = detect_grid(a, cell=cell, cell_w=cell_w, cell_h=cell_h, width=width, height=height, source=source)
    # an image of a palette's colours (quantized before the snap) keeps them: each cell takes
    # its most frequent colour, where a per-channel median of a dithered cell mixes two
    img = sample_cells(a, grid, inner=SMOOTH_INNER if grid.smooth else 0.5, whole=_few_colours([a]))
    if background == "transparent":
        img = _remove_background(img, bg_tolerance, bg_holes)
    return SnapResult(image=img, grid=grid)


def _remove_background(img: np.ndarray, tolerance: float, holes: int = 0) -> np.ndarray:
    try:
        from .cleanup import remove_background
    except ImportError as exc:
        raise InvalidArgumentError(
            "background removal needs comfy_nodes.pixel.cleanup, which is not available",
            hint="snap without the transparent-background option",
        ) from exc
    return remove_background(img, tolerance=tolerance, key=None, holes=holes)
