"""Rail vehicles along the tracks: occupancy evidence, segmentation, type, count interval.

Every track is sampled as a strip: stations every fraction of a pixel along the centre
line, samples across it. The scene calibrates itself: first the light is evened out (a
cloud shadow darkens ground and bodies alike, judged from the ground between the tracks,
:func:`_illumination`); then the commonest colour of the track beds that keeps the usual
contrast to the ground beside it is empty track (ballast is one colour, cars come in
many), and its stations give the empty across-track profile and the spread of everything.
A station is evidence of a body when **no** way empty track can look explains it
(:func:`station_evidence`):

* lit empty track: either half of the bed has the empty colour (a neighbour's shadow
  darkens one side at most; a body covers both);
* shaded or hazy empty track: a darker copy of the empty colour, or a mix of it with the
  colour of haze and thin cloud, with the rail pattern still visible (profile correlation
  with the empty profile; a dark coal wagon is "a darker copy" by colour and only the
  missing rails tell it apart); a deep shadow over the bed must also cover the shoulder
  on the side of its caster (the usual bed-to-ground contrast there), and is unlikely
  where a cloud shadow was undone (diffuse light: bodies cast little shadow);
* the usual contrast between the bed and the ground beside it, on the lit side (a
  shadow or snow over bed and shoulder alike keeps it), unless under a corrected cloud
  shadow that shoulder is much darker than ground: covered by the body on the next
  track of a busy yard (:func:`_covered_shoulder`);
* with an archive, the station's own empty profile over time (turnouts, crossings).

A body of any colour also casts a shadow on the shoulder on the scene's shadow side, which
only a body on that track can darken: where the bed is not in shade, a much darker than
usual shadow-side shoulder adds evidence (:func:`_cast_shadow_evidence`), the one sign of
a car the colour of ballast once the rails are too fine to see. The ground in those shadows
also gives the colour and depth of the scene's shade (:func:`_shadow_ratio`: lit by the
sky, bluer than sunlight): shaded empty track has that colour and is never darker than
full shadow, and where both shoulders lie in shadow their contrast to the bed says nothing
of empty track (a dark body in a neighbour's shadow keeps it too, :func:`_sunless`). On
snow with a low sun, a body shades the whole bed of the neighbouring track on its shadow
side: where that neighbour is occupied, a darker bed of the scene's shadow tint is
explained as empty track (:func:`_neighbour_shadow`, side, tint and depth learned from the
scene). On bare ground too, where the ground between the tracks shows that the shadow
crosses it (shaded on the sun side, lit beyond the bed: :func:`_shaded_ground`). On snow
with the sun known, shade is told by its tint, sky-lit and bluer than sunlit snow or
soil (:func:`_sky_shade`), and a track's shoulders tell whether a body stands on it
(:func:`_own_shadow`): a body shades its far shoulder while the near one stays lit; a
neighbour's shadow shades the near shoulder and the bed but leaves the far one lit.

Vehicles are then found by exact dynamic programming over segmentations of each track
into empty stretches and vehicles whose lengths follow :class:`VehiclePriors` (a
semi-Markov segmentation): coupling gaps show as dips of the evidence and as ballast
between two body colours (:func:`_gap_evidence`), tight
couplings are split where the length prior says, and short dark things (mast shadows,
oil stains) are too short to be vehicles. The same recursion summed instead of
maximised gives the distribution of the number of vehicles, from which the interval
comes (:func:`count_distribution`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from shapely import STRtree, union_all
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from railwatch.quality import (
    Quality,
    TrackObservation,
    assess,
    gray_bands,
    observe_tracks,
    quality_from_observations,
)
from railwatch.site import QualityConfig, Site, SiteGrid, VehiclePriors
from railwatch.tracks import Track, TrackFrame
from railwatch.types import VEHICLE_TYPES

__all__ = [
    "Vehicle",
    "Background",
    "SceneAnalysis",
    "StationEvidence",
    "analyse_scene",
    "learn_background",
    "background_sample",
    "combine_background",
    "station_evidence",
    "segment_track",
    "count_distribution",
]

logger = logging.getLogger(__name__)

BODY_HALF_WIDTH_M = 1.35
"""Across-track half width of the body zone whose colour is compared: inside the body
(1.6 m) and clear of its shadow."""

RAIL_HALF_WIDTH_M = 1.1
"""Across-track half width of the rail pattern compared: both rails (0.76 m) and the
ballast beside them, clear of the side walls of an open wagon (1.4-1.6 m)."""

SHOULDER_M = (1.9, 2.4)
"""Across-track band beside a body (1.6 m) and short of the next track's (>= 4.5 m
spacing): ballast or ground whether the track is occupied or not."""

OUTER_M = 0.75
"""Inner edge of the outer zone of the bed (beyond the rail) on either side: the shadow of
a neighbouring car or building often covers the track past its centre line, and then only
this outer zone of the lit side shows the empty colour."""

ROOF_CORE_M = 0.5
"""Half width of the middle of a roof, inside the rails (0.78 m): where a locomotive's fans
and exhausts, a tank car's dome or a hopper's hatches sit, and where in a coupling gap
the ballast between the rails shows (:func:`_width_gap_evidence`)."""

ROOF_EDGE_M = 0.9
"""Inner edge of the bands along either edge of a body, out to :data:`BODY_HALF_WIDTH_M`,
beyond the rails: in a coupling gap they show ballast or shadow as the middle does
(:func:`_width_gap_evidence`)."""

RAIL_OFFSET_M = 0.78
"""Rail head centre from the track centre line: half of the 1520/1435 mm gauge plus half
a rail head."""

Z_THRESHOLD = 3.0
"""Robust z-score at which a station is as likely a body as empty track."""

Z_CLIP = (-8.0, 7.0)
"""Per-station evidence is clipped so one odd station cannot make or break a vehicle."""

LENGTH_SD_M = 0.6
"""Spread of measured vehicle lengths around the prior of a type."""

LENGTH_FLOOR = 0.05
"""Share of the length prior spread evenly over [min, max] length: vehicles of no listed
type."""

SHAPE_WEIGHT = 2.0
"""Most log-likelihood a body-shape cue adds to its type when the cue is clear, or takes
away when it is clearly absent (a length SD off costs 0.5, two cost 2)."""

HOLLOW_CUE = (0.2, 0.8)
"""Hollowness (rim above centre, in profile SDs) from clearly not open to clearly open."""

RIDGE_CUE = (0.4, 0.8)
"""Ridge (centre highlight above the body median, in profile SDs) from clearly not a
barrel to clearly a barrel."""

SHAPE_SD_FLOOR = 0.02
"""Added to a profile's spread: a featureless profile has no shape."""

INTERVAL_Z = 1.645
"""Normal quantile of the two-sided 90 % interval."""

SCENE_REL_SD = (0.1, 0.3)
"""Relative spread of the count that no per-vehicle term sees: whole runs of track read
wrongly (a shadow strip, a snow edge, a dark track bed), clear scenes and scenes with snow,
cloud or haze over the tracks. The order of the count errors on the tuning archives
(docs/accuracy.md); the coverage the interval reaches is measured there, not assumed."""

NO_HISTORY_REL_SD = 0.6
"""Relative spread of a scene read with no history (a lone acquisition, or fewer than three):
no empty-track appearance to compare with, and usually tracks extracted from the image
itself, so whole tracks can be missed or invented. Judged on the single scenes of tuning
archives 11 and 12 with extracted tracks (errors of -50 % to +200 %; docs/accuracy.md)."""

SCENE_ADD_SD = 2.0
"""Spread in vehicles added to every scene: a single false or missed vehicle happens in
an empty yard as well."""

AMBIGUOUS_Z = 2.0
"""Evidence within this of the threshold (likelihood ratio within about 7:1 either way)
is inconclusive: the scene's own measure of how hard it is to read."""

AMBIGUOUS_SD = 0.5
"""Count spread per vehicle length of inconclusive track: the standard deviation of a
fair coin flip (vehicle or not) per length, the flips of one scene taken together."""

MIN_STATIC_DATES = 6
"""Dates a station must be seen on before it can be called a static structure."""

STATIC_SHARE = 0.7
"""Share of those dates it must look occupied: railcars move, roofs do not."""

STRUCTURE_CHROMA_TOL = 0.03
"""Chromaticity distance (RGB shares) within which a station's body zone shows "the same
colour" on two dates: illumination and sensor drift between dates, far below the spread
of railcar paints. A roof or wall leaning over the track keeps its colour; cars change."""

STRUCTURE_BRIGHT_TOL = 0.25
"""Log brightness (body over the track's median that date) within which two dates'
bodies are also "the same": grey, black and white cars share a neutral chromaticity
but not their brightness next to the ballast."""

STRUCTURE_GAP_M = 10.0
"""Gaps shorter than this between stations beside one structure are closed: a building
is continuous, and a gap shorter than the shortest railcar (12 m) cannot hold one."""

RAKE_GAP_M = 4.0
"""Longest gap in body evidence inside a rake of coupled railcars: coupled bodies leave
well under 2 m between them, and a flat car's low deck ends and buffer beams read as
track for up to a metre more on each side. Occupied track broken by more is not one
rake (:func:`_structure_today`); a third of the shortest railcar."""

STRUCTURE_MIN_BUSY = 3
"""Occupied dates needed before their colours can be called one recurring colour."""

STRUCTURE_END_SHARE = 0.5
"""A building found by :data:`STATIC_SHARE` reaches along the track as far as its shoulder
stays foreign on at least this share of the dates (most of them)."""

STRUCTURE_LEAN_SHARE = 0.7
"""Share of the occupied-looking stations beside one structure that must continue the
colour of the shoulder on the structure's side, on one date, for the structure itself
(its wall leaning over the bed in an off-nadir view, or its shadow over bed and shoulder
alike) to be what covers them (:func:`_structure_lean`). One rigid surface leans or
shades along the whole building the same way; railcars standing there are separate
bodies whose paints end at their sides, so on such dates few of their stations continue
the shoulder."""


BODY_OVERLAP_SHARE = 0.05
"""Share of the smaller footprint (``vehicles.width_m`` wide) two vehicles on different
tracks may overlap and still be two bodies (:func:`_one_body_each`). Bodies cannot
interpenetrate, and tracks side by side (4 m or more apart) leave most of a metre
between 3.2 m footprints; where two centre lines converge (a turnout, a ladder meeting
its yard tracks, a spur leaving its track) they share one set of rails, and a body on
one is seen from both. A twentieth (about 2 square metres of a 14 m car) allows for
footprints a few tenths of a metre off across, as a re-centred line may be, while
still catching two footprints that cross at a ladder's angle."""


LENGTH_WEIGHT = 8.0
"""Weight of the length prior against the evidence summed over a vehicle (stations are
correlated, so the evidence of a vehicle counts less than its number of stations; rail
vehicles come in few lengths, so a run is split where the lengths fit, not at every dark
container gap)."""

COARSE_GSD_M = 1.5
"""At or above this pixel size single cars are not resolved (counts from length)."""

ILLUM_RADIUS_M = 15.0
"""Radius over which the light falling on the yard is taken as one: cloud shadows are tens
to hundreds of metres across, cars 3 m wide and 10-25 m long."""

ILLUM_QUANTILE = 75.0
"""Percentile of the shoulder brightness around a station taken as its local light:
ground in the light, whatever share of it the shadows of cars cover."""

ILLUM_SUN_QUANTILE = 85.0
"""Percentile of the local light over the whole yard taken as full sun: the reference
even when a cloud shadow covers most of the yard."""

ILLUM_DARK_PERCENTILE = 1.0
"""Percentile of the strips' values taken as the scene's dark level (haze, path radiance):
what a cloud shadow scales the light above. In display-encoded (8-bit) products the
darkest percent sits about at the haze; it is too high where no dark object is in view
(an empty yard under a cloud shadow), and below it the count of busy hazy yards drops.
There empty track in sun and in shade locates it (:func:`_dark_from_empty`)."""

DARK_FIT_RAILS = 0.5
"""Least correlation of a station's across-track profile with a pair of rails for it to
count as empty track when the dark level is located from empty track in sun and in shade
(:func:`_dark_from_empty`): normalised, the rail pattern shows in any light."""

DARK_FIT_MIN_GAIN = 1.5
"""Least light gain (against full sun) of the shaded empty track that locates the dark
level (:func:`_dark_from_empty`), and so the largest share of the light its spread may
keep (the inverse): nearer full sun, extrapolating to the dark level amplifies the noise."""

DARK_FIT_RATIO_TOL = 0.03
"""Relative error of the share of light left in shade as measured by the spread across
empty track (:func:`_dark_from_empty`): noise, which the shade does not scale, and the
ballast's variation along the yard. The smaller share within it, so the higher dark
level, is taken. (The ratio of bed to ground cannot locate the dark level: ballast is
often within a few percent of the ground's brightness, and then every level fits.)"""

DARK_OBJECT_SHARE = 0.85
"""Share of the light (above the dark level) of shaded empty track that a dark object
in the same shade falls below (a black car, a deep shadow, water reflect a small part of
what ballast does): a darkest percent above it is the shaded bed's own darker parts
(rails, ties), no dark object is in view, and the dark level located from empty track
replaces it (:func:`_dark_from_empty`)."""

DARK_FIT_MIN_STATIONS = 20
"""Least number of sampled empty-track stations in full sun, and in shade, for
:func:`_dark_from_empty`."""

ILLUM_SHADE_FLOOR = 0.25
"""Least share of the full-sun light above the dark level left under a cloud shadow (the
diffuse light of the sky and what the cloud lets through): the correction raises the
light at most by its inverse."""

ILLUM_MAX_SNOW = 0.1
"""Share of the observed track on snow above which the ground's brightness is a map of
the snow: the light is not evened out, and a shadow need not show at a shoulder."""

ILLUM_TOLERANCE = 1.1
"""Light deficit (as a gain) taken as the ground's own variation rather than shadow; the
correction is phased in up to twice that deficit."""

BODY_NCC = 0.1
"""Typical correlation of a body's across-track profile with an empty profile where the
rails are resolved (the body's own texture, unrelated to rails)."""

EMPTY_RATIO_TOL = 0.25
"""Date-to-date spread (natural log) of the ratio of empty track to the ground between the
tracks, both above the dark level (:func:`_empty_ratio`): ballast and the ground beside
it are lit alike, so the ratio is a property of the yard; neighbours' shadows, haze,
moisture and what a cloud-shadow correction leaves change it by up to about this much.
A candidate empty colour within it of the archive's ratio keeps its score; beyond, the
score falls as a Cauchy tail of the excess (twice as far: half, five times: 1/17): an
odd date is down-weighted, never ruled out, and a fleet of dark cars (several times
darker than the ground) loses to ballast."""

CLOUD_SHADE_LLR = 6.0
"""Log prior odds against a deep shadow over the bed where the light was raised to undo a
cloud shadow: under a cloud the light is diffuse and bodies cast little shadow, so once
the light is corrected a bed much darker than ballast is a dark body, not shade."""

DIFFUSE_GAIN = (1.5, 2.0)
"""Light gain (:func:`_light`) from which (in full at the upper value) a cloud shadow is
taken to block the direct sun, leaving the diffuse light of the sky (a fifth to a half
of full sun): there no neighbour's shadow crosses a bed, so empty track shows its rails
whatever its colour and a bed without them is a body (:func:`_rail_evidence`). Below,
thin cloud dims the sun and its shadows remain."""

COVERED_SHOULDER = (0.6, 0.8)
"""Brightness above the dark level of the brighter shoulder, relative to the shoulders of
empty track, below which (in full at the lower value) a shoulder under a corrected cloud
shadow is taken as covered (a body on the next track, tight in a busy yard) rather than
ground: there the bed-to-shoulder contrast compares a body with a body and explains
nothing."""

SHADOW_CLEAR_Z = 3.0
"""Evidence above :data:`Z_THRESHOLD` of the stations taken as clear bodies when the side
their shadows fall to is learned."""

SHADOW_MIN_STATIONS = 40
"""Clear-body stations needed to learn the shadow side of a scene (a few cars)."""

SHADOW_MIN_DARKENING = 0.08
"""Mean difference (log brightness) between the two shoulders beside clear bodies below
which the scene shows no shadow side (sun near the zenith, shadows along the tracks)."""

SHADOW_AGREE = 0.85
"""Share of clear-body stations whose darker shoulder is on the learned side."""

SHADOW_MAX_LLR = 6.0
"""Largest evidence from a cast shadow."""

TRACK_SHOULDER_QUANTILE = 25.0
"""Percentile of a track's own empty-colour stations that sets its usual shoulder darkening.

A body's shadow is as long as the body, a train's at most a few hundred metres; a shoulder
darker along the whole track (a bed drawn off its centre line, snow drifted on one side,
ground of another colour) is that track's usual look. A low quantile keeps a train of
ballast-coloured cars standing on up to three quarters of the track from becoming the
level it is judged against.
"""

TRACK_SHOULDER_MIN_M = 30.0
"""Least length of empty-colour stations on a track for its own shoulder level (two cars)."""

SHADOW_SEPARATION = 3.0
"""Robust spreads of empty track's shoulder darkening by which the clear bodies' cast
shadows must stand out for the scene's shadow side to count (:func:`_separating_side`)."""

SHADOW_TRACK_CLEARANCE_M = 2.0
"""A shoulder closer than this to another track's centre line is that track's bed or
body (ladders, turnouts) and says nothing of a shadow."""

SHADOW_DEPTH_MAX = 1.15
"""Deepest shade of empty track, as a multiple of the full shadow learned beside bodies
(shadow depth varies a little with the sky seen)."""

NEIGHBOUR_M = (4.0, 6.0)
"""Centre-line spacing of neighbouring tracks whose bodies can shade each other's bed."""

NEIGHBOUR_SHADE_PRIOR = 1.0
"""Prior penalty of "empty track in the shadow of the neighbour's body" where that
neighbour is occupied (a shadow there is expected, not rare)."""

NEIGHBOUR_DOUBT = 1.0
"""Least evidence (below :data:`Z_THRESHOLD`) left by the neighbour-shadow explanation:
the stretch stays inconclusive (it widens the count interval) rather than surely empty."""

NEIGHBOUR_RAIL_WEIGHT = 0.5
"""Weight of the missing rails against a shaded bed (shade on snow leaves them faint)."""

NEIGHBOUR_TINT_TOL = 0.06
"""Largest difference of band ratios (shaded bed over empty track, per unit brightness)
from the scene's shadow tint among the beds that learn its depth."""

NEIGHBOUR_DARKER = 0.05
"""Least darkening (log brightness) of a neighbour bed beside a clear body, against the
neighbour beds beside empty track, for it to teach the shadow's colour."""

NEIGHBOUR_DEPTH_SLACK = np.array([0.8, 1.2])
"""Widening of the learned range of shadow depths (5th-95th percentile of the beds)."""

NEIGHBOUR_SHARE = 0.3
"""Least share of the darker shadow-side neighbour beds of clear bodies that have the
shadow's tint, for the scene to show a shadow over its neighbour beds."""

NEIGHBOUR_MIN_SPREAD = 1.5
"""Least spread (noise units) of the shaded bed about the shadow colour: shade on snow
is patchier than the lit bed."""

NEIGHBOUR_MAX_TINT = 0.4
"""Largest departure of the shadow's band ratios (per unit brightness) from neutral."""

NEIGHBOUR_REACH_M = 5.0
"""Along-track reach of a caster's shadow beyond its occupied stretch (the shadow's
along-track lean)."""

OBLIQUE_DEG = 3.0
"""Angle between neighbouring tracks above which one crosses the other (a ladder or
turnout, 1:6-1:12, 5-9.5 deg); tracks side by side run parallel within a degree or two."""

SNOW_COVER_SHARE = 0.5
"""Share of the observed track on snow above which the ground between the tracks is
snow-covered, one colour: its shoulders show a body's shadow as on bare ground. Below, on
patchy snow, a bare patch darkens a shoulder as much as a shadow does."""

SNOW_LIT_BRIGHT = 0.6
"""Least brightness (mean of the visible bands, data scaled about 0-1) of the sunlit ground
between the tracks, the :data:`ILLUM_SUN_QUANTILE` percentile of the shoulders, for that
ground to be snow (:func:`_snow_ground`). Sunlit snow reflects 0.7-0.9 of the light (in
linear 11-bit products too); bare soil, gravel, grass and ballast 0.1-0.35, under 0.5
once display-encoded. The stations' snow flag (a strip median above 0.7) misses snow in a
packed yard under a low sun, where beds, cars and shade fill most of each strip, the more
so in a linear product."""

SUN_ACROSS_MIN = math.sin(math.radians(15.0))
"""Least share of the sun's horizontal direction across a track for the acquisition's
known sun to name the shadow side of that track: with the sun within 15 deg of the
track's direction the shadows run along it (a 4 m car at 25 deg elevation throws less
than 2.3 m across, barely past its shoulder) and the side is learned from the scene."""

FRAGMENT_M = 2.5
"""Longest run of body evidence beyond the end of a complete body that is taken for a
stray (:func:`_fragments`): a shadow strip across the track, blurred at 1.0 m (a 0.5 m
beam's shadow shows as 1.5-2 m), rather than a piece of a vehicle; far below the
shortest vehicle, and no body has an empty gap inside."""

ARCHIVE_SHADE_TOL = 1.15
"""How much deeper than the scene's full shadow (:func:`_shadow_ratio`, log units) a bed
must be darkened against its own empty bed over the archive for that to be a body
(:func:`_archive_evidence`): shade over an empty bed darkens it up to full shadow, and
the shadow ratio is learned to about this precision."""

SUN_AGREE = 0.5
"""Least share of the clear bodies whose shoulder on the known sun's shadow side is the
darker for their cast shadow to be evidence: fewer, they cast none there (no direct sun
under cloud, or shade taken for bodies)."""

SKY_TINT_SPREADS = (3.0, 4.0)
"""Robust spreads of the lit ground's tint (blue to red, log) beyond which a shoulder of a
snowy scene may be shaded (first value), and by which the scene's shade must stand apart
from the lit ground for tint to tell shade at all (second): shade is lit by the sky
alone, bluer than sunlight, on snow and bare ground alike, while a bare patch in the
snow is no bluer than the snow (:func:`_sky_shade`)."""

LOW_BODY_HEIGHT_M = 1.3
"""Height above the rails of the lowest vehicle top (a flat car's deck): every body
casts at least this tall a shadow."""

TALL_BODY_HEIGHT_M = 5.0
"""Height above the rails of the tallest vehicle top (a locomotive, a covered hopper:
4.5-5 m): no body casts a longer shadow."""

BODY_EDGE_M = 1.6
"""Half width of a railcar body (3.1-3.3 m wide): its shadow starts here."""

NO_SHADOW_LLR = 3.0
"""Log-likelihood ratio (empty vs body) of a far shoulder in the sun where the lowest
body's shadow would cover it in full (:func:`_own_shadow`): on the snow scenes of the
1.0 m tuning archives (seeds 14, 24, 29) about 0.95 of the empty stations and at most 0.1
of the body stations show it lit over :data:`SHADE_RUN_M` (log 19 = 2.9); on one scene,
a train beside a dark strip of road whose tint is not the sky's, 0.3."""

SHADE_RUN_M = 4.0
"""Along-track window (metres) over which a body's shadow on its far shoulder is sought
(:func:`_own_shadow`): shorter than any railcar (10 m and more), longer than the one or
two pixels over which noise, a coupling gap or a snow patch break a shadow at 1.0 m."""

SHADE_HEIGHT_M = 4.5
"""Tallest body that can shade the ground (car height prior 3.5-4.5 m): how far its shadow
reaches decides which shoulders measure the light (:func:`_open_sides`)."""

TEMPERATURE = 2.0
"""Scale of the evidence in the count posterior: neighbouring stations are correlated
(the strip is oversampled and smoothed), so the per-station evidence is not independent."""

CONTRAST_CALIBRATE_SHARE = 0.5
"""Least share of the empty-mode stations that keep the usual bed-to-shoulder contrast
for the scene to calibrate that contrast against its clear bodies (below it the contrast
is not a look of the scene's empty track: snow, patchy ground)."""

FINE_DETAIL_MIN = 0.2
"""Least energy of the grid's finest detail (second differences at one pixel) relative to
that at two pixels for a scene to resolve the grid pixel. Texture at the pixel's own
scale gives about 0.3 and more; a scene resampled from pixels twice the grid's or coarser
has almost none at that scale (about 0.1): there a car body is some 3 pixels wide, the
rails are not seen and the shoulder beside a body is blurred into it."""

GAP_EDGE_SHARE = 0.5
"""Least break of a roof's edge, as a share of the break in its middle, for a coupling
gap next to dark roof equipment (:func:`_width_gap_evidence`). A gap breaks the whole
width alike (about 1); a dark patch confined to the middle of the roof reaches the
edges only through the blur of the pixels, a small part of its contrast."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One detected rail vehicle.

    Attributes
    ----------
    track_id : str
    polygon : shapely.geometry.Polygon
        Body outline in the grid CRS, oriented along the track.
    length_m : float
        Measured body length, metres.
    type : str
        ``tank``, ``open``, ``flat``, ``covered``, ``locomotive`` or ``unknown``.
    confidence : float
        0-1. Below ``site.detection.min_confidence`` the vehicle is reported but not
        counted.
    observed_share : float
        Share of the vehicle's length that was observed (clear data inside the AOI).
    counted : bool
        Whether the vehicle enters ``railcars`` (confident and mostly observed).
    """

    track_id: str
    polygon: Polygon
    length_m: float
    type: str
    confidence: float
    observed_share: float = 1.0
    counted: bool = True

    def to_record(self) -> dict[str, Any]:
        """Plain mapping (without geometry) for table rows."""
        return {
            "track_id": self.track_id,
            "type": self.type,
            "length_m": round(self.length_m, 2),
            "confidence": round(self.confidence, 3),
        }


@dataclass(frozen=True, slots=True)
class Background:
    """Empty-track appearance learned over the aligned stack, per track and station.

    Attributes
    ----------
    shapes : dict
        Per track id, a (k, n) array: the normalised across-track profile of each
        station when empty (median over the dates that showed it empty), NaN where no
        date did.
    support : dict
        Per track id, (n,) number of dates that showed the station empty.
    texture : dict
        Per track id, (n,) clear-scene across-track texture (for the haze test).
    n_scenes : int
        Scenes that contributed.
    step_m : float
        Station spacing the model was learned with.
    static : dict
        Per track id, (n,) True where the station looked occupied on at least
        :data:`STATIC_SHARE` of at least :data:`MIN_STATIC_DATES` dates: a roof, a
        platform or a structure over the track, treated as not observable.
    empty_ratio : dict
        Per band name, the median over the snow-free dates of the log ratio of empty
        track to the ground between the tracks (:func:`_empty_ratio`).
    structure : dict
        Per track id, (4, n) colour (:func:`_body_chroma`) of a structure beside the
        track that leans over it on some dates (:func:`_structure_beside`), NaN
        elsewhere: on a date a station showing this colour is not observable
        (:func:`_structure_today`).
    structure_side : dict
        Per track id, (n,) +1 / -1 where the shoulder on the left (+) / right (-) side is
        off its usual colour on at least :data:`STATIC_SHARE` of at least
        :data:`MIN_STATIC_DATES` dates (a building beside the track), 0 elsewhere
        (:func:`_structure_side`, used by :func:`_structure_lean`).
    bed_ratio : dict
        Per track id, (n,) the station's own empty bed against the ground between the
        tracks (:func:`_bed_ratio`), median over the snow-free dates that showed it
        empty (at least two), NaN elsewhere (:func:`_archive_evidence`).
    """

    shapes: dict[str, np.ndarray] = field(default_factory=dict)
    support: dict[str, np.ndarray] = field(default_factory=dict)
    texture: dict[str, np.ndarray] = field(default_factory=dict)
    n_scenes: int = 0
    step_m: float = 0.25
    static: dict[str, np.ndarray] = field(default_factory=dict)
    empty_ratio: dict[str, float] = field(default_factory=dict)
    structure: dict[str, np.ndarray] = field(default_factory=dict)
    structure_side: dict[str, np.ndarray] = field(default_factory=dict)
    bed_ratio: dict[str, np.ndarray] = field(default_factory=dict)

    def shape_for(self, track_id: str, n: int) -> np.ndarray | None:
        """Per-station empty shapes of one track if they match ``n`` stations."""
        s = self.shapes.get(track_id)
        return s if s is not None and s.shape[1] == n else None

    def texture_for(self, track_id: str, frame: TrackFrame) -> np.ndarray | None:
        """Clear-scene texture per station (for the haze test), or None."""
        t = self.texture.get(track_id)
        sup = self.support.get(track_id)
        if t is None or sup is None or t.shape[0] != frame.s_m.shape[0] or self.n_scenes < 3:
            return None
        return np.where(sup >= 2, t, np.nan)


@dataclass(frozen=True, slots=True)
class SceneAnalysis:
    """Everything detected in one acquisition.

    Attributes
    ----------
    vehicles : tuple of Vehicle
        All detections, counted or not.
    quality : Quality
    railcars : int or None
        Counted vehicles; None when the yard is obscured or not covered.
    railcars_low, railcars_high : int or None
        Interval meant to contain the true count in at least 90 % of acquisitions.
    by_type : dict
        Counted vehicles per type (every type present, zeros included).
    unobserved : shapely geometry
        Track parts inside the AOI not seen (nodata or cloud), grid CRS.
    """

    vehicles: tuple[Vehicle, ...]
    quality: Quality
    railcars: int | None
    railcars_low: int | None
    railcars_high: int | None
    by_type: dict[str, int]
    unobserved: BaseGeometry


@dataclass(frozen=True, slots=True)
class StationEvidence:
    """Per-station evidence along one track.

    Attributes
    ----------
    z : numpy.ndarray
        (n,) robust z-score of "not empty track" (rails hidden, foreign colour).
    observed : numpy.ndarray
        (n,) bool, clear data inside the AOI.
    colour : numpy.ndarray
        (bands, n) mean body-zone value per band (for types and cuts).
    shape : numpy.ndarray
        (k, n) normalised across-track profile (for the background model).
    cut : numpy.ndarray or None
        (n + 1,) evidence for a gap between two vehicles at each station boundary.
    unsure : numpy.ndarray or None
        (n,) bool, called empty only as a deep shadow over the bed in a scene that does
        not resolve the rails (a dark body looks the same): inconclusive, not empty.
    empty_ratio : numpy.ndarray or None
        (bands,) log ratio of the scene's empty-track colour to its ground
        (:func:`_empty_ratio`, the same on every track); None on snow.
    bed_ratio : numpy.ndarray or None
        (n,) each station's body zone against the ground (:func:`_bed_ratio`); None on
        snow.
    """

    z: np.ndarray
    observed: np.ndarray
    colour: np.ndarray
    shape: np.ndarray
    cut: np.ndarray | None = None
    unsure: np.ndarray | None = None
    empty_ratio: np.ndarray | None = None
    bed_ratio: np.ndarray | None = None


# --------------------------------------------------------------------------- evidence


def _unit(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Zero-mean, unit-norm along ``axis`` (NaN-free input)."""
    x = x - x.mean(axis=axis, keepdims=True)
    return x / (np.linalg.norm(x, axis=axis, keepdims=True) + 1e-9)


def _smooth_along(x: np.ndarray, size: int) -> np.ndarray:
    return ndi.uniform_filter1d(x, size=max(1, size), axis=-1, mode="nearest")


def _noise_along(x: np.ndarray, pieces: Sequence[int]) -> np.ndarray:
    """Per-row noise of piecewise-constant signals: MAD of along-track differences.

    Cars and ballast are both long and uniform along the track, so the difference of
    neighbouring stations (a few metres apart) is noise almost everywhere.
    """
    lag = 8
    diffs = []
    i0 = 0
    for n in pieces:
        seg = x[:, i0 : i0 + n]
        if n > lag:
            diffs.append(seg[:, lag:] - seg[:, :-lag])
        i0 += n
    if not diffs:
        return np.full(x.shape[0], 1e-3)
    d = np.concatenate(diffs, axis=1)
    return np.maximum(1.4826 * np.median(np.abs(d), axis=1) / math.sqrt(2), 1e-3)


def _distance(pts: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(pts - c[:, None], axis=0)`` without the (b, N) temporaries.

    Same operations in the same order (squares summed band by band, then the root).
    """
    d = pts[0] - c[0]
    acc = d * d
    for b in range(1, pts.shape[0]):
        np.subtract(pts[b], c[b], out=d)
        np.multiply(d, d, out=d)
        acc += d
    return np.sqrt(acc, out=acc)


def _masked_median(ranked: np.ndarray, by_band: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row, ``np.median`` of the values where ``mask`` (N,) holds (NaN-free rows).

    ``ranked`` is each row sorted, ``by_band`` the sorting order (``np.argsort`` along
    rows); the middle one or two masked values are picked from the sorted order.
    """
    n = int(np.count_nonzero(mask))
    half = n // 2
    out = np.empty(ranked.shape[0], dtype=ranked.dtype)
    for b in range(ranked.shape[0]):
        pos = np.flatnonzero(mask[by_band[b]])
        if n % 2:
            out[b] = ranked[b, pos[half]]
        else:
            out[b] = (ranked[b, pos[half - 1]] + ranked[b, pos[half]]) / 2.0
    return out


def _colour_modes(col: np.ndarray, seen: np.ndarray, radius: float) -> list[np.ndarray]:
    """Modes of the station colours (standardised units) by mean shift from a few seeds."""
    idx = np.flatnonzero(seen)
    pts = col[:, idx]
    order = np.argsort(pts.sum(axis=0))
    # Each band sorted once: the median of a subset is then read off the sorted order
    # (:func:`_masked_median`) instead of partitioning a copy at every step.
    by_band = np.argsort(pts, axis=1)
    ranked = np.take_along_axis(pts, by_band, axis=1)
    modes: list[np.ndarray] = []
    # The seeds' paths often meet (medians of the same stations): each step is taken once.
    steps: dict[bytes, np.ndarray | None] = {}  # centre -> next centre, None: stop there
    # Seeds across the whole range of brightness: each path ends at the nearest mode
    # uphill, and with few seeds a mode as common as empty ballast in a busy yard could be
    # reached by none of them after a perturbation of a hundred-thousandth of a pixel.
    for q in np.linspace(0.05, 0.95, 10):
        c = pts[:, int(order[int(q * (len(order) - 1))])]
        for _ in range(15):
            key = c.tobytes()
            if key not in steps:
                near = _distance(pts, c) <= radius
                nxt = _masked_median(ranked, by_band, near) if near.any() else None
                # np.allclose(nxt, c, atol=1e-3) for finite values: converged.
                if nxt is not None and np.all(np.abs(nxt - c) <= 1e-3 + 1e-5 * np.abs(c)):
                    nxt = None
                steps[key] = nxt
            if steps[key] is None:
                break
            c = steps[key]
        if all(np.linalg.norm(c - m) > radius for m in modes):
            modes.append(c)
    return modes


def _gauss_ll(x: np.ndarray, mu: float, sd: float) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - math.log(sd)


def station_evidence(
    observations: Sequence[TrackObservation],
    *,
    background: Background | None = None,
    resolved: bool = True,
    sun: tuple[float, float] | None = None,
) -> list[StationEvidence]:
    """Per-station evidence of a body on every track of one scene.

    Parameters
    ----------
    observations : sequence of TrackObservation
        Strips of one scene from :func:`railwatch.quality.observe_tracks`.
    background : Background, optional
        Per-station empty-track shapes learned over the stack.
    resolved : bool
        Whether the scene resolves the grid pixel (:func:`_fine_detail`); if not, the
        stations called empty only as deep shade are marked ``unsure``.
    sun : (float, float), optional
        Sun azimuth (clockwise from grid north) and elevation, degrees, at acquisition.
        Given, the side the shadows fall to follows from it (:func:`_shadow_direction`)
        instead of being learned from the scene's clear bodies.

    Returns
    -------
    list of StationEvidence
        In the order of ``observations``; ``z`` is a log-likelihood ratio (body vs empty
        track) shifted by :data:`Z_THRESHOLD`, so ``z - Z_THRESHOLD`` is the evidence.

    Notes
    -----
    The scene calibrates itself. Where a cloud shadow lowers the light on the ground
    between the tracks, the strips are brightened back (:func:`_illumination`). Station
    colours (body zone, per band) are standardised by their along-track noise; their
    modes are candidate "empty track" colours, and the one whose stations are common,
    share an across-track profile most like a pair of rails and keep the usual contrast
    to the ground beside them (the physical priors) is taken as empty track. Its
    stations give the empty profile and the spread of their correlation with it. Each
    station then gets

    * a colour term: distance to the empty colour, or to any darker copy of it (a
      shadow, scaling the light above the haze), whichever is nearer, the shadow being
      a little less likely a priori and, when deep, needing the usual bed-to-ground
      contrast on at least one side (:func:`_contrast_sides`);
    * a rail term: how much better its profile correlation fits a body (around 0.1,
      broad) than empty track (the calibrated peak).

    Where clear bodies show the scene's shadows (:func:`_shadow_ratio`), shade has their
    colour and is no deeper than full shadow (with snow this is one more explanation
    beside the darker copy), and the bed-to-ground contrast explains only stations with
    a shoulder in the light (:func:`_sunless`).

    All tracks of a scene share one model, so a track full of cars is judged against the
    empty track beside it. With a background, the candidate colour whose stations best
    match their own empty profiles over time (:func:`_background_ncc`) is preferred:
    in a busy or shaded yard the commonest colour may be a run of cars, but cars do not
    look like the empty track of the stations they stand on. Nor do they keep the yard's
    ratio of empty track to the ground between the tracks, learned over the archive
    (:func:`_empty_ratio`, :data:`EMPTY_RATIO_TOL`): a fleet of dark cars, commonest on a
    busy date, is several times darker than that ground. A station's correlation
    with its own empty profile over time also replaces the scene's where higher
    (turnouts, crossings).
    """
    if not observations:
        return []
    shadow = _shadow_direction(sun)
    o0 = observations[0]
    offs = o0.frame.offsets_m
    body = np.abs(offs) <= BODY_HALF_WIDTH_M
    rail = np.abs(offs) <= RAIL_HALF_WIDTH_M
    step = o0.frame.step_m
    smooth = max(1, int(round(0.75 / step)))
    gidx = gray_bands(o0.bands)
    prof, cols, obs_mask = [], [], []
    halves: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    outer: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    raw: list[np.ndarray] = []
    core: list[np.ndarray] = []
    edges: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    ground: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    observed_cols: list[np.ndarray] = []  # (b, n) per track, before the light correction
    light = _light(observations, sun)
    gains = [(dark, gain) for dark, gain, _ in light]
    snowy = _snowy(observations)
    under = np.concatenate([_cloud_shade_weight(g) for _, g in gains])
    # Shade left on the bed where the correction stopped short explains a darker bed.
    undone = np.concatenate([_cloud_shade_weight(g, need) for _, g, need in light])
    # Where the direct sun is blocked, not just dimmed: no shadow crosses a bed there.
    diffuse = undone * np.concatenate([_diffuse_weight(g) for _, g, _ in light])
    for o, (dark, gain) in zip(observations, gains, strict=True):
        v = np.nan_to_num(o.values, nan=0.0)
        observed_cols.append(_smooth_along(v[:, body].mean(axis=1), smooth))
        v = dark[:, None, None] + (v - dark[:, None, None]) * gain[:, None, :]
        raw.append(v[:, body].mean(axis=1))
        core.append(v[:, np.abs(offs) <= ROOF_CORE_M].mean(axis=1))
        edges[0].append(v[:, body & (offs >= ROOF_EDGE_M)].mean(axis=1))
        edges[1].append(v[:, body & (offs <= -ROOF_EDGE_M)].mean(axis=1))
        v = _smooth_along(v, smooth)
        prof.append(v[gidx][:, rail].mean(axis=0))  # (k, n)
        halves[0].append(v[:, body & (offs >= 0.2)].mean(axis=1))
        halves[1].append(v[:, body & (offs <= -0.2)].mean(axis=1))
        outer[0].append(v[:, body & (offs >= OUTER_M)].mean(axis=1))
        outer[1].append(v[:, body & (offs <= -OUTER_M)].mean(axis=1))
        ground[0].append(v[:, (offs >= SHOULDER_M[0]) & (offs <= SHOULDER_M[1])].mean(axis=1))
        ground[1].append(v[:, (offs <= -SHOULDER_M[0]) & (offs >= -SHOULDER_M[1])].mean(axis=1))
        cols.append(v[:, body].mean(axis=1))  # (b, n)
        full = o.observed & np.isfinite(o.values).all(axis=(0, 1))
        # Smoothing along the track reaches this far into nodata: trust no station there.
        obs_mask.append(ndi.binary_erosion(full, iterations=smooth + 1, border_value=0) & full)
    sizes = [p.shape[1] for p in prof]
    allp = np.concatenate(prof, axis=1)
    allc = np.concatenate(cols, axis=1)
    seen = np.concatenate(obs_mask)
    shapes = _unit(allp)
    n_all = allp.shape[1]
    # The noise scales every station's evidence, scene-wide. After the light correction
    # it grows with the gain wherever shade was undone, so a yard read as in cloud shade
    # (a busy yard under a low sun, its shoulders in the bodies' own shadows) would lower
    # the evidence of every car in the scene, in sun or not; before it, the steps at
    # shadow edges along the track add to it. Both only overstate the image's noise: the
    # smaller is taken.
    obs_cols = np.concatenate(observed_cols, axis=1)
    noise = (
        np.maximum(
            np.minimum(_noise_along(obs_cols, sizes), _noise_along(allc, sizes)),
            0.02 * np.median(allc[:, seen], axis=1),
        )
        if seen.any()
        else np.ones(allc.shape[0])
    )
    bed = None
    if seen.sum() < 20:
        z = np.full(n_all, Z_THRESHOLD - 1.0)
    else:
        std = allc / noise[:, None]
        half_std = [np.concatenate(h, axis=1) / noise[:, None] for h in halves]
        radius = 3.0 * math.sqrt(allc.shape[0])
        o_r = offs[rail]
        width = max(0.12, 0.8 * step)
        analytic = _unit(np.exp(-0.5 * ((np.abs(o_r) - RAIL_OFFSET_M) / width) ** 2))
        # Beside empty track the ground continues the bed (the usual bed-to-shoulder
        # contrast); a body breaks it. Of the candidate colours, empty track is the one
        # whose stations keep that contrast (unless snow on the ground changes it).
        bed_contrast = _contrast_evidence(halves, ground, seen)
        bed_like = np.ones(seen.shape, bool) if snowy else bed_contrast < Z_THRESHOLD
        # With an archive, each station's own empty profile over time: empty track in
        # any light (shade, haze, a dark stretch of ballast) still matches it, a body
        # does not (normalised profiles ignore brightness and contrast).
        own_ncc, own_ok = _background_ncc(shapes, observations, sizes, background)
        # Empty track keeps the archive's ratio to the ground between the tracks.
        dark = gains[0][0] if gains else np.zeros(allc.shape[0])
        level = _ground_level(ground, seen)
        ref = _archive_ratio(background, o0.bands, snowy)
        modes = []
        for m in _colour_modes(std, seen, radius):
            members = seen & (np.linalg.norm(std - m[:, None], axis=0) <= radius)
            if members.sum() < max(20, 0.05 * seen.sum()):
                continue
            tmpl = _unit(np.median(shapes[:, members], axis=1))
            # Empty track is the commonest look of a yard: ballast is one colour, cars
            # come in many. The rail pattern only breaks near ties; judged against each
            # station's own empty profile where the archive has one.
            rails = abs(float(tmpl @ analytic))
            known = members & own_ok
            if known.sum() >= 0.5 * members.sum():
                rails = float(np.clip(np.median(own_ncc[known]), 0.0, 1.0))
            score = float(members.mean()) * (0.5 + rails) * (0.25 + float(bed_like[members].mean()))
            if ref is not None:
                miss = _empty_ratio(np.median(allc[:, members], axis=1), level, dark) - ref
                excess = max(math.sqrt(float(np.nanmean(miss**2))) - EMPTY_RATIO_TOL, 0.0)
                score /= 1.0 + (excess / EMPTY_RATIO_TOL) ** 2
            modes.append((score, m, members, tmpl))
        for mo in modes:
            logger.debug(
                "candidate empty colour %s: %d stations, score %.3f",
                np.round(mo[1] * noise, 3),
                mo[2].sum(),
                mo[0],
            )
        if modes:
            _, m, members, tmpl = max(modes, key=lambda mo: mo[0])
        else:
            m, members = np.median(std[:, seen], axis=1), seen
            tmpl = _unit(np.median(shapes[:, seen], axis=1))
        logger.debug("empty-track mode %s of %d stations", np.round(m, 1), members.sum())
        known = members & own_ok
        if resolved and known.sum() >= 0.5 * members.sum():
            # Cars of the empty colour join its stations but not their own empty profile
            # where the rails are resolved (a body's correlation is about BODY_NCC): the
            # model of empty track comes from the stations nearer their own profile than
            # halfway from a body's to the colour's typical correlation.
            mid = 0.5 * (BODY_NCC + float(np.median(own_ncc[known])))
            if (known & (own_ncc > mid)).sum() >= 20:
                members = known & (own_ncc > mid)
                tmpl = _unit(np.median(shapes[:, members], axis=1))
        # Colour of thick cloud or haze: the brightest station colours of the scene.
        haze = np.percentile(std[:, seen], 99.5, axis=1)
        # Rails seen on either side of the centre line on their own: a shadow edge
        # along the track breaks the correlation of the whole profile, not of one side.
        side_rail = _side_rails(allp, o_r, members, allc.shape[0])
        outer_std = [np.concatenate(h, axis=1) / noise[:, None] for h in outer]
        ratio = None if snowy else _empty_ratio(np.median(allc[:, members], axis=1), level, dark)
        explain = {
            "haze": haze,
            "dark": dark / noise,
            # Snow on the shoulders changes their contrast to the bed, shadow or not.
            "shaded_side": None if snowy else _contrast_sides(halves, ground, seen),
            "cloud_shade": undone,
            "diffuse": diffuse,
        }
        empty_args = (std, half_std, shapes, m, members, tmpl, (own_ncc, own_ok))
        z_empty = _explain_empty(*empty_args, **explain)
        edge = _explain_edge(std, half_std, outer_std, m, members, side_rail)
        # A body must be unexplained both by the colour of empty track and by the usual
        # contrast between the track bed and the ground beside it.
        shoulders = [np.concatenate(g, axis=1) for g in ground]
        g_sum = [sh.sum(axis=0) for sh in shoulders]
        shade_side = np.where(g_sum[0] >= g_sum[1], 1, 0)  # the other side is lit
        lean = g_sum[1] - g_sum[0]  # positive: the left shoulder is the darker
        # The usual contrast is no surer a sign of empty track than the scene's own
        # clear bodies show (a blurred shoulder beside a body keeps it too).
        floor = _contrast_floor(bed_contrast, z_empty, edge, members, seen)
        # It explains a station only with the lit half's flank as usual too: a dark
        # body's sunlit roof can lift the half's mean to ballast's contrast, not its flank.
        flank = _flank_evidence(halves, outer, ground, seen, bed_contrast < Z_THRESHOLD)
        contrast = np.minimum(
            np.maximum(np.maximum(bed_contrast, flank), floor),
            np.maximum(_contrast_evidence(outer, ground, seen), floor)
            + np.where(shade_side == 1, side_rail[1], side_rail[0]),
        )
        covered = _covered_shoulder(ground, members & seen, gains, under)
        other = np.minimum(edge, contrast + covered)
        z = np.minimum(z_empty, other)
        # Shade has the colour of the scene's own shadows, learned beside clear bodies:
        # a shadow cast on empty track is that colour, never darker than full shadow.
        # How much of the darkest objects' light is haze (added, not shaded) is not
        # known: between none and all of it, each with its own shadow colour.
        offsets = (np.zeros_like(dark), dark) if dark.any() else (dark,)
        ratios = [_shadow_ratio(shoulders, z, members, seen, off) for off in offsets]
        lines = [(o / noise, r) for o, r in zip(offsets, ratios, strict=True) if r is not None]
        if lines and snowy:
            # Snow gives empty track more looks than shade (bare ballast between the
            # patches, slush): there the plain darker copy stays an explanation too.
            z = np.minimum(z, _explain_empty(*empty_args, **explain, shadow=lines))
        elif lines:
            if ratios[0] is not None:
                # With both shoulders in shadow, a bed as dark as the ground beside it
                # is no sign of empty track: a dark body in a neighbour's shadow is too.
                other = np.where(_sunless(shoulders, members & seen, ratios[0]), edge, other)
            z = np.minimum(other, _explain_empty(*empty_args, **explain, shadow=lines))
        frames = [o.frame for o in observations]
        sky_own = None
        # Snow flagged on the stations, or the sunlit ground as bright as only snow is (the
        # flag misses snow in a packed yard under a low sun, in a linear product).
        on_snow = snowy or _snow_ground(shoulders, o0.bands, seen)
        if on_snow and shadow is not None and sun is not None:
            # On snow shade is told by its tint: a lit far shoulder beside a shaded near
            # one is empty track in a neighbour's shadow (none of its own).
            beds = [allc] + [np.concatenate(h, axis=1) for h in halves]
            sky = _sky_shade(shoulders, beds, o0.bands, seen)
            if sky is not None:
                clear = seen & (z >= Z_THRESHOLD + SHADOW_CLEAR_Z)
                sky_own = _own_shadow(sky, frames, shadow, sun[1], seen, clear)
            if sky_own is not None:
                base = Z_THRESHOLD + NEIGHBOUR_SHADE_PRIOR + SHADOW_MAX_LLR
                lit_far = np.where(sky_own[1] > 0, base - 2.0 * sky_own[1], np.inf)
                # Bed and both shoulders in shade (a building's shadow): the colour says
                # nothing, and empty track still shows its rails there.
                dark_all = sky[0] * sky[1] * sky[2]
                rails = np.minimum(side_rail[0], side_rail[1])
                in_shade = np.where(dark_all > 0, base + rails - SHADOW_MAX_LLR * dark_all, np.inf)
                z = np.minimum(z, np.minimum(lit_far, in_shade))
        # Stations that only the shadow of a body on the next track explains.
        in_nb_shadow = np.zeros(n_all, bool)
        if snowy or ratios[0] is not None:
            # On snow shade is bluer and hides the rails: where a neighbour's body can
            # cast it, a shadow over the bed is expected (see _neighbour_shadow). On bare
            # ground, with a low sun a body's shadow crosses the ground to the next bed,
            # whose rails fade in it: shade there, where that ground is shaded too.
            rails = np.minimum(side_rail[0], side_rail[1])
            reach = None if snowy else _shaded_ground(shoulders, members & seen, ratios[0], diffuse)
            nb_z = _neighbour_shadow(
                std,
                m,
                members,
                dark / noise,
                rails,
                frames,
                z,
                seen,
                reach=reach,
                shadow=shadow,
                lean=lean,
                bands=o0.bands,
                shade=ratios[0],
                elevation_deg=None if sun is None else sun[1],
            )
            if not snowy:
                in_nb_shadow = (nb_z < Z_THRESHOLD) & (z >= Z_THRESHOLD)
            z = np.minimum(z, nb_z)
        cast = None
        if not snowy or _snow_share(observations) >= SNOW_COVER_SHARE:
            # A body of any colour casts a shadow beside it: the one sign of a car the
            # colour of ballast once the rails are too fine to see (on snow, of a dark
            # car the plain darker copy of snow explains).
            cast = _cast_shadow_evidence(
                allc.mean(axis=0),
                [np.concatenate(h, axis=1).mean(axis=0) for h in halves],
                [sh.mean(axis=0) for sh in shoulders],
                frames,
                z,
                members,
                seen,
                snow=snowy,
                shadow=shadow,
            )
        if sky_own is not None:
            # On snow a bare patch darkens a shoulder as much as a shadow does, and a
            # dark body darkens the bed as much as shade does: its own shadow is told by
            # its tint, beside a sun-side shoulder in the light (a darker far shoulder
            # of the lit ground's tint is a bare patch).
            cast = sky_own[0] if cast is None else np.maximum(cast * sky_own[2], sky_own[0])
        if cast is not None:
            z = z + cast
        if sky_own is not None and not resolved:
            # Without the rails, a pale patch of snow over the bed (or a bare one in the
            # snow) looks like a body by colour alone; but every body, even a flat car's
            # deck, shades its far shoulder (_own_shadow). Added last, like the cast
            # shadow: the scene's clear bodies above calibrate shade and shadows.
            z = z - sky_own[3]
        bed = None if snowy else _bed_ratio(allc, level, dark, o0.bands)
        same_ground = ref is not None and ratio is not None
        if same_ground:
            # The ground between the tracks as over the archive (no snow or wet there):
            # today's empty track keeps the archive's ratio to it.
            miss = math.sqrt(float(np.nanmean((ratio - ref) ** 2)))
            same_ground = miss <= EMPTY_RATIO_TOL
            logger.debug("empty-to-ground ratio off the archive's by %.3f", miss)
        if bed is not None and background is not None and not resolved and same_ground:
            # Where the rails are not resolved, a dark body and a dark bed look alike but
            # for the bed's own colour over the archive (at finer scales the rails tell).
            own = _archive_bed(background, observations, sizes)
            if own is not None:
                shade = None
                if ratios[0] is not None:
                    rgb = [list(o0.bands).index(b) for b in ("red", "green", "blue")]
                    shade = -float(np.log(ratios[0][rgb]).mean())
                # The shade depth is learned on open ground beside the bodies; the bed
                # of a track in the shadow of the next track's bodies is the one place
                # where a calibrated explanation (side, tint, depth) already says shade.
                z = z + np.where(
                    in_nb_shadow, 0.0, _archive_evidence(bed - own, z, members, seen, shade)
                )
        if not resolved:
            # Without the rails a dark body and a deep shadow over the bed look alike:
            # where only the shadow explains a station it is inconclusive.
            no_shade = _explain_empty(*empty_args, **explain, shade=False)
            unsure = (z < Z_THRESHOLD) & (np.minimum(no_shade, other) >= Z_THRESHOLD)
    z = np.clip(np.nan_to_num(z, nan=0.0), *Z_CLIP)
    # One odd station (a mast shadow, a glint) is not a body; coupling gaps span several.
    z = ndi.median_filter(z, size=3, mode="nearest")
    if resolved or seen.sum() < 20:
        unsure = np.zeros(n_all, bool)
    if seen.sum() < 20:
        ratio = bed = None
    out = []
    i0 = 0
    for n, c in zip(sizes, np.split(allc, np.cumsum(sizes)[:-1], axis=1), strict=True):
        k = len(out)
        cut = _width_gap_evidence(
            raw[k] / noise[:, None],
            core[k] / noise[:, None],
            (edges[0][k] / noise[:, None], edges[1][k] / noise[:, None]),
            step,
            resolved=resolved,
        )
        sl = slice(i0, i0 + n)
        b_sl = None if bed is None else bed[sl]
        out.append(StationEvidence(z[sl], seen[sl], c, shapes[:, sl], cut, unsure[sl], ratio, b_sl))
        i0 += n
    return out


def _ground_level(ground: Sequence[list[np.ndarray]], seen: np.ndarray) -> np.ndarray:
    """(b,) full-light level of the ground between the tracks (after the light correction).

    The :data:`ILLUM_SUN_QUANTILE` percentile over the observed stations of the brighter
    shoulder: a body's own shadow darkens the other one, and in a busy yard the bodies on
    the next tracks cover some shoulders, never the brightest.
    """
    g = [np.concatenate(gi, axis=1) for gi in ground]
    lit = np.where(g[0].sum(axis=0) >= g[1].sum(axis=0), g[0], g[1])
    if not seen.any():
        return np.full(lit.shape[0], np.nan)
    return np.percentile(lit[:, seen], ILLUM_SUN_QUANTILE, axis=1)


def _empty_ratio(colour: np.ndarray, level: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """(b,) natural log of ``(colour - dark) / (level - dark)``: a colour against the ground.

    Above the dark level (haze, :func:`_light`) both scale with the light, so the ratio of
    empty track to the ground between the tracks is the same in sun and (corrected) cloud
    shadow; a dark car is several times darker than the ground, ballast is not.
    """
    return np.log(np.maximum(colour - dark, 1e-3)) - np.log(np.maximum(level - dark, 1e-3))


def _bed_ratio(
    colour: np.ndarray, level: np.ndarray, dark: np.ndarray, bands: Sequence[str]
) -> np.ndarray | None:
    """(N,) mean over red, green and blue of the body-zone to ground log ratio per station.

    :func:`_empty_ratio` per station; the visible bands every product has, so that dates
    with and without near-infrared compare. None without them.
    """
    idx = [list(bands).index(b) for b in ("red", "green", "blue") if b in bands]
    if len(idx) < 3:
        return None
    r = _empty_ratio(colour[idx], level[idx, None], dark[idx, None])
    return r.mean(axis=0)


def _archive_bed(
    background: Background, observations: Sequence[TrackObservation], sizes: Sequence[int]
) -> np.ndarray | None:
    """(N,) each station's empty-bed ratio over the archive (:attr:`Background.bed_ratio`)."""
    parts = []
    for o, n in zip(observations, sizes, strict=True):
        b = background.bed_ratio.get(o.track.track_id)
        parts.append(b if b is not None and b.shape[0] == n else np.full(n, np.nan))
    out = np.concatenate(parts)
    return out if np.isfinite(out).any() else None


def _archive_evidence(
    dev: np.ndarray,
    z: np.ndarray,
    members: np.ndarray,
    seen: np.ndarray,
    shade: float | None = None,
) -> np.ndarray:
    """(N,) body evidence from a bed unlike its own empty bed over the archive.

    ``dev`` is today's bed-to-ground ratio minus the station's archive one. Over empty
    track it is about today's common offset (the scene's stations of the empty colour);
    the scene's clear bodies show how far off a body is. Log-likelihood ratio of that
    distance, body vs empty track, as in :func:`_cast_shadow_evidence`.
    """
    none = np.zeros(dev.shape)
    ok = seen & np.isfinite(dev)
    ref = members & ok
    clear = ok & (z >= Z_THRESHOLD + SHADOW_CLEAR_Z)
    if ref.sum() < 20 or clear.sum() < SHADOW_MIN_STATIONS:
        return none
    mu0 = float(np.median(dev[ref]))
    # How much darker than its own empty bed, beyond today's common offset.
    a = np.maximum(mu0 - dev, 0.0)
    mu_e = float(np.median(a[ref]))
    sd_e = max(0.02, 1.4826 * float(np.median(np.abs(a[ref] - mu_e))))
    mu_b = float(np.median(a[clear]))
    sd_b = max(sd_e, 1.4826 * float(np.median(np.abs(a[clear] - mu_b))))
    logger.debug("archive bed: body %.3f+-%.3f, empty %.3f+-%.3f", mu_b, sd_b, mu_e, sd_e)
    if mu_b - mu_e < SHADOW_SEPARATION * sd_e:
        return none
    x = np.clip(np.nan_to_num(a, nan=mu_e), mu_e, mu_b)
    llr = _gauss_ll(x, mu_b, sd_b) - _gauss_ll(x, mu_e, sd_e)
    if shade is not None:
        # A bed darkened no more than the scene's full shadow may be an empty bed in a
        # neighbour's shadow: no evidence there.
        ok = ok & (a > ARCHIVE_SHADE_TOL * shade)
    return np.where(ok, np.clip(llr, 0.0, SHADOW_MAX_LLR), 0.0)


def _archive_ratio(
    background: Background | None, bands: Sequence[str], snowy: bool
) -> np.ndarray | None:
    """(b,) the archive's empty-to-ground log ratio per band of ``bands`` (NaN if unknown).

    None without an archive value for any band, or on snow (snow changes the ground).
    """
    if background is None or snowy or not background.empty_ratio:
        return None
    ref = np.array([background.empty_ratio.get(b, np.nan) for b in bands], float)
    return ref if np.isfinite(ref).any() else None


def _cast_shadow_evidence(
    bed: np.ndarray,
    halves: Sequence[np.ndarray],
    ground: Sequence[np.ndarray],
    frames: Sequence[TrackFrame],
    z: np.ndarray,
    members: np.ndarray,
    seen: np.ndarray,
    *,
    snow: bool = False,
    shadow: np.ndarray | None = None,
) -> np.ndarray:
    """Body evidence from the shadow a body casts on the shoulder beside its track.

    All shadows of a scene fall the same way. The shoulder on the shadow side of a track
    can be darkened only by a body on that track (a neighbour's shadow reaching it
    covers the bed first; the shadows of the cars beyond fall away from it), while the
    other shoulder is also reached by the neighbours' shadows. The shadow side is taken
    from the stations that are clearly bodies (``z`` well above :data:`Z_THRESHOLD`):
    which shoulder is darker beside them than beside empty track (``members``), as a
    direction in the grid CRS so that tracks drawn either way agree; in a busy yard,
    where the next track's shadows reach the bodies' other shoulder too, the side along
    which the bodies stand apart from empty track (:func:`_separating_side`). Where the
    scene shows neither (sun overhead, shadows along the tracks, too few bodies) there is
    no evidence, nor where the shoulder is another track's bed (ladders, turnouts).

    Parameters
    ----------
    bed : numpy.ndarray
        (N,) band-mean brightness of the body zone per station.
    halves, ground : sequence of numpy.ndarray
        Band-mean brightness of the bed half and of the shoulder on the left (+) and
        right (-) side, (N,) each.
    frames : sequence of TrackFrame
        Sampling geometry of the tracks whose stations, concatenated, make up ``N``.
    z, members, seen : numpy.ndarray
        (N,) evidence so far, empty-mode stations and observed stations.
    snow : bool
        Snow-covered scene (side learned beside ground only, lit sun-side shoulder).
    shadow : numpy.ndarray, optional
        (2,) direction the shadows fall to, from the sun (:func:`_shadow_direction`):
        the side then follows from it where it crosses the tracks (:func:`_sun_across`).

    Returns
    -------
    numpy.ndarray
        (N,) non-negative log-likelihood ratio to add to the evidence: the shadow-side
        shoulder is darker than beside empty track by about as much as beside the
        scene's clear bodies, while the bed itself is not darker (a shadow over bed and
        shoulder alike is shade, explained elsewhere).
    """
    none = np.zeros(bed.shape)
    ref = members & seen
    clear = seen & (z >= Z_THRESHOLD + SHADOW_CLEAR_Z)
    if ref.sum() < 20 or clear.sum() < SHADOW_MIN_STATIONS:
        return none
    xy, normals, owner = _station_geometry(frames)
    # A shoulder that is the bed of another track (ladders, turnouts) is no light meter:
    # per side, stations whose shoulder lies there.
    mid = 0.5 * (SHOULDER_M[0] + SHOULDER_M[1])
    foreign_lr = _across(xy, normals, owner, mid, 8, SHADOW_TRACK_CLEARANCE_M, other=True)
    # On snow, where the beds crossing a ladder differ most from the snow between the
    # tracks, the side and depth of the bodies' shadows are learned beside ground only.
    on_ground = clear & ~(foreign_lr[0] | foreign_lr[1])
    if snow and on_ground.sum() >= SHADOW_MIN_STATIONS:
        clear = on_ground

    def darkening(v: np.ndarray) -> np.ndarray:
        lv = np.log(np.maximum(v, 1e-3))
        return np.median(lv[ref]) - lv  # positive: darker than beside empty track

    dark = [darkening(g) for g in ground]
    # Left shoulder darker than right beside a body: the shadow falls to the left.
    lean = dark[0] - dark[1]
    sun_across = _sun_across(shadow, normals, clear)
    if sun_across is not None:
        vec, size, across = shadow, 1.0, sun_across
        agree = float(np.mean(lean[clear] * across[clear] > 0))
        if agree < SUN_AGREE:
            # Few "bodies" shade the ground where the sun throws their shadows: none
            # there (no direct sun under cloud, shade taken for bodies) unless in a busy
            # yard they stand apart from empty track on the sun's shadow side.
            sep = _separating_side(dark, normals, clear, ref)
            if sep is None or float(sep @ shadow) <= 0.0:
                logger.debug("no cast shadow: %.2f of clear bodies shade the sun's side", agree)
                return none
    else:
        vec = (lean[clear, None] * normals[clear]).mean(axis=0)
        size = float(np.hypot(*vec))
        across = normals @ (vec / max(size, 1e-9))
        agree = float(np.mean(lean[clear] * across[clear] > 0))
        if size < SHADOW_MIN_DARKENING or agree < SHADOW_AGREE:
            logger.debug("no cast-shadow side by asymmetry: %.3f, %.2f agree", size, agree)
            # Shadows falling onto a body's sun-side shoulder from the next track blur
            # the asymmetry in a busy yard (and snow patches it): the side along which
            # the clear bodies stand apart from empty track can still tell.
            vec = _separating_side(dark, normals, clear, ref)
            if vec is None:
                return none
            size, across = 1.0, normals @ vec
            agree = float(np.mean(lean[clear] * across[clear] > 0))
    left = across > 0
    sh = np.where(left, dark[0], dark[1])
    # Darkening of the shoulder that the bed does not share: a shadow reaching the
    # shoulder from beyond the track covers the bed half next to it first.
    bed_dark = np.maximum(
        darkening(bed), np.where(left, darkening(halves[0]), darkening(halves[1]))
    )
    if snow:
        # That shadow crosses the sun-side shoulder before the bed: where that shoulder
        # is lit, a dark bed is no shade but the body itself (a dark car on snow).
        bed_dark = np.minimum(bed_dark, np.where(left, dark[1], dark[0]))
    x = sh - np.maximum(bed_dark, 0.0)
    # A track whose shadow-side shoulder is darker than the scene's all along is judged
    # against its own usual level: only the darkening beyond it is a body's shadow.
    x = x - _track_level(x, owner, ref, frames[0].step_m, float(np.median(x[ref])))
    mu_e = float(np.median(x[ref]))
    sd_e = max(0.02, 1.4826 * float(np.median(np.abs(x[ref] - mu_e))))
    mu_b = float(np.median(sh[clear]))
    sd_b = max(sd_e, 1.4826 * float(np.median(np.abs(sh[clear] - mu_b))))
    logger.debug(
        "cast shadow: side %s, agree %.2f, body %.3f+-%.3f, empty %.3f+-%.3f",
        np.round(vec / size, 2),
        agree,
        mu_b,
        sd_b,
        mu_e,
        sd_e,
    )
    if mu_b - mu_e < SHADOW_SEPARATION * sd_e:
        return none
    # The shadow-side shoulder must be ground, not the bed of another track; nor is
    # the side known from the sun where the shadows run along the track.
    foreign = np.where(left, foreign_lr[0], foreign_lr[1])
    if sun_across is not None:
        foreign = foreign | (np.abs(across) < SUN_ACROSS_MIN)
    # Beyond the usual darkening beside a body the shadow is no less a body's; a
    # shoulder no darker than beside empty track (a bed in a neighbour's shadow, darker
    # than its lit shoulder) is no sign of one, however far below.
    xc = np.clip(x, mu_e, mu_b)
    llr = _gauss_ll(xc, mu_b, sd_b) - _gauss_ll(xc, mu_e, sd_e)
    if snow:
        # Patchy snow darkens a shoulder as much as a shadow does: only where the
        # sun-side shoulder is in the light (less than halfway to a body's shadow
        # darkening) is the dark shadow-side shoulder this track's own shadow. Nor
        # beside a track oblique to the next (ladders, turnouts), whose shoulders cross
        # the beds between the tracks, on snow darker than the ground.
        foreign = foreign | (np.where(left, dark[1], dark[0]) > 0.5 * mu_b)
        foreign = foreign | _oblique(xy, normals, owner, cKDTree(xy))
    return np.where(foreign, 0.0, np.clip(llr * np.abs(across), 0.0, SHADOW_MAX_LLR))


def _track_level(
    x: np.ndarray, owner: np.ndarray, ref: np.ndarray, step_m: float, scene_level: float
) -> np.ndarray:
    """How much darker than the scene's each track's shoulder usually is, per station.

    Parameters
    ----------
    x : numpy.ndarray
        (N,) shoulder darkening per station (log units, positive: darker).
    owner : numpy.ndarray
        (N,) track index of every station.
    ref : numpy.ndarray
        (N,) bool, observed stations of the empty-track colour.
    step_m : float
        Station spacing, metres.
    scene_level : float
        The scene's usual darkening beside empty track (median of ``x`` over ``ref``).

    Returns
    -------
    numpy.ndarray
        (N,) non-negative excess of the track's :data:`TRACK_SHOULDER_QUANTILE` over
        ``scene_level``; 0 on tracks with under :data:`TRACK_SHOULDER_MIN_M` of ``ref``.

    Examples
    --------
    >>> x = np.r_[np.zeros(200), np.full(200, 0.15)]
    >>> owner = np.repeat([0, 1], 200)
    >>> lvl = _track_level(x, owner, np.ones(400, bool), 0.25, 0.0)
    >>> float(lvl[0]), float(lvl[-1])
    (0.0, 0.15)
    """
    out = np.zeros(x.shape)
    need = TRACK_SHOULDER_MIN_M / step_m
    for k in np.unique(owner):
        own = ref & (owner == k)
        if own.sum() >= need:
            level = float(np.percentile(x[own], TRACK_SHOULDER_QUANTILE))
            out[owner == k] = max(level - scene_level, 0.0)
    return out


def _sky_shade(
    ground: Sequence[np.ndarray],
    beds: Sequence[np.ndarray],
    bands: Sequence[str],
    seen: np.ndarray,
) -> list[np.ndarray] | None:
    """How surely (0-1) each station's shoulders and bed lie in shade, from their tint.

    In shade the ground is lit by the sky alone, bluer than by the sun: on patchy snow a
    shadow is told from a bare patch by its tint (blue over red), not its brightness.
    Most of the ground between the tracks is in the sun: its tint and spread are the
    median and the robust spread on the blue side over the observed shoulders (snow and
    bare soil differ in tint: the spread reaches the bluer), and the scene's shade is the
    median tint of the shoulders beyond :data:`SKY_TINT_SPREADS` [0] spreads bluer. In a
    packed yard under a low sun the median shoulder may be shade: where it is that much
    bluer than the brightest quarter of the shoulders (in the sun whatever the share of
    shade), the lit ground's tint and spread are theirs. A shoulder (or bed) counts as
    shaded in full at the shade's tint, and not at all within two spreads of the lit
    ground's.

    Parameters
    ----------
    ground : sequence of numpy.ndarray
        (b, N) shoulder colour on the left (+) and on the right (-) side.
    beds : sequence of numpy.ndarray
        (b, N) colours of parts of the bed (the body zone, its halves).
    bands : sequence of str
        Band names along ``b``.
    seen : numpy.ndarray
        (N,) observed stations.

    Returns
    -------
    list of numpy.ndarray or None
        (N,) shade shares of the left and right shoulders, then of each of ``beds``;
        None without red and blue bands, or where the scene's shade does not stand apart
        from the lit ground by its tint (:data:`SKY_TINT_SPREADS` [1]).

    Examples
    --------
    >>> lit = np.array([[0.8] * 50 + [0.45] * 50, [0.8] * 50 + [0.45] * 50])
    >>> shaded = np.array([[0.3] * 50, [0.45] * 50])
    >>> left = np.concatenate([lit, shaded], axis=1)
    >>> right = np.concatenate([lit, lit[:, :50]], axis=1)
    >>> shade = _sky_shade([left, right], [right], ("red", "blue"), np.ones(150, bool))
    >>> float(shade[0][0]), float(shade[0][-1]), float(shade[1][-1])
    (0.0, 1.0, 0.0)
    """
    if "red" not in bands or "blue" not in bands or seen.sum() < 20:
        return None
    r, b = list(bands).index("red"), list(bands).index("blue")
    tint = [np.log(np.maximum(g[b], 1e-3)) - np.log(np.maximum(g[r], 1e-3)) for g in ground]
    t = np.concatenate([x[seen] for x in tint])
    tint += [np.log(np.maximum(c[b], 1e-3)) - np.log(np.maximum(c[r], 1e-3)) for c in beds]
    # The lit ground may be of two tints (snow, bare soil): its spread is taken on the
    # blue side, up to the bluest lit surface, where shade would begin.
    lit, upper = (float(q) for q in np.percentile(t, (50.0, 75.0)))
    sd = max(0.005, (upper - lit) / 0.6745)
    # In a packed yard under a low sun most of the ground between the tracks lies in
    # the shadow of the next track's cars, and the median shoulder is shade. The
    # brightest shoulders are in the sun whatever the share of shade (shade on snow or
    # soil is darker than the same ground lit): where the median is bluer than their
    # tint by SKY_TINT_SPREADS [0] of their spread, the lit ground is theirs.
    vis = gray_bands(bands)
    bright = np.concatenate([g[vis].mean(axis=0)[seen] for g in ground])
    top = t[bright >= np.percentile(bright, ILLUM_QUANTILE)]
    lit_top, upper_top = (float(q) for q in np.percentile(top, (50.0, 75.0)))
    sd_top = max(0.005, (upper_top - lit_top) / 0.6745)
    if lit > lit_top + SKY_TINT_SPREADS[0] * sd_top:
        lit, sd = lit_top, sd_top
    blue = t[t > lit + SKY_TINT_SPREADS[0] * sd]
    if blue.size < SHADOW_MIN_STATIONS:
        return None
    shade = float(np.median(blue))
    logger.debug("sky shade: tint %.3f+-%.3f lit, %.3f shaded (%d)", lit, sd, shade, blue.size)
    if shade < lit + SKY_TINT_SPREADS[1] * sd:
        return None
    lo = lit + 2.0 * sd
    return [np.clip((x - lo) / (shade - lo), 0.0, 1.0) for x in tint]


def _own_shadow(
    shade: Sequence[np.ndarray],
    frames: Sequence[TrackFrame],
    shadow: np.ndarray,
    elevation_deg: float,
    seen: np.ndarray,
    clear: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Body evidence from which shoulder of a track lies in shade, the sun known.

    Shadows fall away from the sun: a body shades the shoulder on its shadow side (the
    far one), and the shadow of anything beyond the sun-side (near) shoulder crosses
    that shoulder first. So a shaded far shoulder beside a lit near one and a lit bed
    (the body's top in the sun: not the edge of a building's shadow) is the shadow of
    a body on this track, and a lit far shoulder beside a shaded near one is a
    neighbour's shadow over empty track: a body there would have shaded the far
    shoulder too, as long as the lowest body (:data:`LOW_BODY_HEIGHT_M`) casts its
    shadow past that shoulder at this elevation of the sun. Both weigh up to
    :data:`SHADOW_MAX_LLR` times the share of the far shoulder that shadow covers;
    neither holds where the sun runs along the track (:data:`SUN_ACROSS_MIN`), where a
    shoulder is another track's bed, or beside a track oblique to its neighbour
    (ladders, turnouts). None where the scene's clear bodies in the sun (bed and the
    bed's near half not in shade) contradict the sun: fewer than :data:`SUN_AGREE` of
    those with one shoulder shaded have it on the far side (a wrong time of day).

    Parameters
    ----------
    shade : sequence of numpy.ndarray
        (N,) shade shares (:func:`_sky_shade`) of the left (+) and right (-)
        shoulders, the bed, and its left and right halves.
    frames : sequence of TrackFrame
        Sampling geometry of the tracks whose stations, concatenated, make up ``N``.
    shadow : numpy.ndarray
        (2,) direction the shadows fall to (:func:`_shadow_direction`).
    elevation_deg : float
        Sun elevation, degrees.
    seen : numpy.ndarray
        (N,) observed stations.
    clear : numpy.ndarray
        (N,) stations clearly bodies so far.

    Returns
    -------
    body, empty : numpy.ndarray
        (N,) non-negative log-likelihood ratios: for a body (its own shadow) and for
        empty track in a neighbour's shadow (the far shoulder lit).
    far : numpy.ndarray
        (N,) shade share of the far shoulder; 1 where the shoulders tell nothing.
    unshaded : numpy.ndarray
        (N,) non-negative log-likelihood ratio for empty track whatever the near
        shoulder: the far shoulder lit all along :data:`SHADE_RUN_M`, up to
        :data:`NO_SHADOW_LLR` times the share of it the lowest body's shadow covers.
        Without the rails it tells a pale snow patch over a bed from a body
        (:func:`station_evidence` uses it only where the rails are not resolved).
    """
    xy, normals, owner = _station_geometry(frames)
    across = normals @ shadow
    left = across > 0
    far = np.where(left, shade[0], shade[1])
    near = np.where(left, shade[1], shade[0])
    mid = 0.5 * (SHOULDER_M[0] + SHOULDER_M[1])
    foreign_lr = _across(xy, normals, owner, mid, 8, SHADOW_TRACK_CLEARANCE_M, other=True)
    ok = seen & (np.abs(across) >= SUN_ACROSS_MIN) & ~(foreign_lr[0] | foreign_lr[1])
    ok &= ~_oblique(xy, normals, owner, cKDTree(xy))
    # How far across the track the lowest body's shadow reaches beyond its side, and
    # how much of the far shoulder it covers.
    reach = LOW_BODY_HEIGHT_M / math.tan(math.radians(max(elevation_deg, 1.0))) * np.abs(across)
    covers = (BODY_EDGE_M + reach - SHOULDER_M[0]) / (SHOULDER_M[1] - SHOULDER_M[0])
    weight = np.where(ok, SHADOW_MAX_LLR * np.clip(covers, 0.0, 1.0), 0.0)
    near_half = np.where(left, shade[4], shade[3])
    told = clear & ok & (np.abs(far - near) > 0.5) & (np.maximum(shade[2], near_half) < 0.5)
    if told.sum() >= SHADOW_MIN_STATIONS:
        agree = float(np.mean(far[told] > near[told]))
        if agree < SUN_AGREE:
            logger.debug("no sky shade: %.2f of bodies in the sun shade the sun's side", agree)
            return None
    body = weight * far * (1.0 - near) * (1.0 - shade[2])
    # A body's shadow runs along its whole length: the far shoulder counts as lit only
    # where no station within SHADE_RUN_M shows it shaded (noise, a coupling gap or a
    # snow patch inside the shadow break it for a pixel or two, not for a car's length).
    size = max(1, int(round(SHADE_RUN_M / frames[0].step_m))) | 1
    shaded_run = np.concatenate(
        [
            ndi.maximum_filter1d(np.where(ok, far, 0.0)[owner == k], size=size, mode="nearest")
            for k in range(len(frames))
        ]
    )
    unshaded = NO_SHADOW_LLR * np.clip(covers, 0.0, 1.0) * (1.0 - shaded_run)
    return body, weight * near * (1.0 - far), np.where(ok, far, 1.0), np.where(ok, unshaded, 0.0)


def _separating_side(
    dark: Sequence[np.ndarray], normals: np.ndarray, clear: np.ndarray, ref: np.ndarray
) -> np.ndarray | None:
    """Unit direction (2,) in which the scene's shadows fall across the tracks, or None.

    A body always shades the shoulder on its shadow side; the other shoulder only where
    a body on the next track casts its shadow that far, as it does beside empty track
    too. Of the two sides across the yard's usual track direction, the shadow side is
    the one whose darkening (``dark``, log units below empty track's, left + and right
    -) sets the clear bodies apart from the empty-track stations ``ref`` by at least
    :data:`SHADOW_SEPARATION` robust spreads while the other side does not.
    """
    # The yard's usual normal, the normals of tracks drawn either way made to agree.
    n0 = normals[clear][0]
    flip = np.where(normals[clear] @ n0 >= 0, 1.0, -1.0)
    n0 = (normals[clear] * flip[:, None]).mean(axis=0)
    n0 = n0 / max(float(np.hypot(*n0)), 1e-9)
    seps = []
    for sign in (1.0, -1.0):
        across = sign * (normals @ n0)
        sh = np.where(across > 0, dark[0], dark[1])
        mu_e = float(np.median(sh[ref]))
        sd_e = max(0.02, 1.4826 * float(np.median(np.abs(sh[ref] - mu_e))))
        seps.append((float(np.median(sh[clear])) - mu_e) / sd_e)
    k = int(np.argmax(seps))
    logger.debug("cast-shadow side by separation: %.1f vs %.1f", seps[k], seps[1 - k])
    if seps[k] < SHADOW_SEPARATION or seps[1 - k] >= SHADOW_SEPARATION:
        return None
    return (1.0 if k == 0 else -1.0) * n0


def _shadow_direction(sun: tuple[float, float] | None) -> np.ndarray | None:
    """(2,) unit horizontal direction the shadows fall to (grid x east, y north), or None.

    ``sun`` is the sun's azimuth (degrees clockwise from north) and elevation at the
    acquisition; shadows fall away from the sun. The grid is UTM (y north): its north
    departs from true north by the meridian convergence, a degree or two within a zone,
    well inside :data:`SUN_ACROSS_MIN`. None without a sun above the horizon.
    """
    if sun is None:
        return None
    azimuth_deg, elevation_deg = sun
    if not (math.isfinite(azimuth_deg) and elevation_deg > 0.0):
        return None
    a = math.radians(azimuth_deg)
    return np.array([-math.sin(a), -math.cos(a)])


def _sun_across(
    shadow: np.ndarray | None, normals: np.ndarray, clear: np.ndarray
) -> np.ndarray | None:
    """(N,) share of the shadow direction along each station's left normal, or None.

    None (learn the side from the scene) without a sun, or where the shadows run along
    the tracks of most clear bodies (``clear``): less than :data:`SUN_ACROSS_MIN` across.
    """
    if shadow is None:
        return None
    across = normals @ shadow
    if clear.any() and np.mean(np.abs(across[clear]) >= SUN_ACROSS_MIN) < 0.5:
        logger.debug("sun along the tracks: shadow side learned from the scene")
        return None
    return across


def _across(
    xy: np.ndarray,
    normals: np.ndarray,
    owner: np.ndarray,
    mid: float,
    k: int,
    bound: float,
    *,
    other: bool = False,
) -> list[np.ndarray]:
    """Per side (+, -), the ``k`` nearest stations within ``bound`` of ``xy +- mid * normals``.

    The indices of ``cKDTree(xy).query`` (``len(xy)`` where none); with ``other``, only
    whether any of them is of another track (``owner``).
    """
    n = xy.shape[0]
    tree = cKDTree(xy)
    got = []
    for sign in (1.0, -1.0):
        idx = tree.query(xy + sign * mid * normals, k=k, distance_upper_bound=bound)[1]
        if other:
            got.append(((idx < n) & (owner[np.minimum(idx, n - 1)] != owner[:, None])).any(axis=1))
        else:
            got.append(idx)
    return got


def _oblique(xy: np.ndarray, normals: np.ndarray, owner: np.ndarray, tree: cKDTree) -> np.ndarray:
    """(N,) stations whose neighbouring track (:data:`NEIGHBOUR_M` away) runs at an angle.

    Tracks beside each other run parallel; a ladder or turnout crosses them at more
    than :data:`OBLIQUE_DEG`.
    """
    n_all = xy.shape[0]
    mid = 0.5 * (NEIGHBOUR_M[0] + NEIGHBOUR_M[1])
    half = 0.5 * (NEIGHBOUR_M[1] - NEIGHBOUR_M[0])
    cos_max = math.cos(math.radians(OBLIQUE_DEG))
    out = np.zeros(n_all, bool)
    for sign in (1.0, -1.0):
        dist, idx = tree.query(xy + sign * mid * normals, k=4, distance_upper_bound=half)
        j = np.minimum(idx, n_all - 1)
        other = np.isfinite(dist) & (owner[j] != owner[:, None])
        cos = np.abs(np.einsum("nd,nkd->nk", normals, normals[j]))
        out |= (other & (cos < cos_max)).any(axis=1)
    return out


def _shadow_ratio(
    ground: Sequence[np.ndarray],
    z: np.ndarray,
    members: np.ndarray,
    seen: np.ndarray,
    dark: np.ndarray,
) -> np.ndarray | None:
    """Per band, the share of the light a full shadow leaves, learned beside clear bodies.

    A body casts a shadow on one of its shoulders: there the ground is in full shadow,
    while beside empty track the brighter shoulder is ground in the light. The ratio of
    the two (above the dark offset ``dark``, per band) is the colour of the scene's
    shadows, whatever the ground: the sky lights the shade, so it is bluer than the sun.

    Parameters
    ----------
    ground : sequence of numpy.ndarray
        Shoulder colour on the left (+) and right (-) side, (b, N) each.
    z, members, seen : numpy.ndarray
        (N,) evidence so far, empty-mode stations and observed stations.
    dark : numpy.ndarray
        (b,) dark offset of the scene (haze, sensor), subtracted before the ratio.

    Returns
    -------
    numpy.ndarray or None
        (b,) ratios in (0, 1]; None with too few clear bodies or no shadow beside them
        (sun near the zenith or along the tracks).
    """
    ref = members & seen
    clear = seen & (z >= Z_THRESHOLD + SHADOW_CLEAR_Z)
    if ref.sum() < 20 or clear.sum() < SHADOW_MIN_STATIONS:
        return None
    g0, g1 = (g - dark[:, None] for g in ground)
    first = g0.sum(axis=0) >= g1.sum(axis=0)
    lit = np.where(first[None], g0, g1)
    shade = np.where(first[None], g1, g0)
    light = np.median(lit[:, ref], axis=1)
    if (light <= 0).any():
        return None
    ratio = np.median(shade[:, clear], axis=1) / light
    # Ground beside the bodies darker than the scene's darkest objects is no shadow on
    # ground (the "bodies" are something else); no darker than the ground is no shadow.
    if (ratio <= 0).any() or float(np.log(np.minimum(ratio, 1.0)).mean()) > -SHADOW_MIN_DARKENING:
        return None
    ratio = np.clip(ratio, 0.05, 1.0)
    logger.debug("shadow colour: %s of the light", np.round(ratio, 3))
    return ratio


def _sunless(ground: Sequence[np.ndarray], ref: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Stations with both shoulders nearer full shadow than full light.

    ``ground`` holds the shoulder colours (b, N) on either side, ``ref`` the stations
    beside which the brighter shoulder is ground in the light (empty track), ``ratio``
    the share of the light a full shadow leaves (:func:`_shadow_ratio`, no offset).
    """
    bright = np.maximum(ground[0].sum(axis=0), ground[1].sum(axis=0))
    light = float(np.median(bright[ref]))
    return bright < light * math.sqrt(float(np.mean(ratio)))


def _shaded_ground(
    ground: Sequence[np.ndarray], ref: np.ndarray, ratio: np.ndarray, blocked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per side (left +, right -), stations (N,) whose shoulder lies nearer full shadow.

    The shoulders are ground between the tracks, which no body covers: one in shadow
    beside a track whose own body would shade the other side is reached by the shadow
    of something beyond it, a body on the next track when the sun is low. ``ground``
    holds the shoulder colours (b, N), ``ref`` the stations whose brighter shoulder is
    ground in the light (empty track), ``ratio`` the share of the light a full shadow
    leaves (:func:`_shadow_ratio`, no offset); the cut is halfway (geometric mean)
    between full light and full shadow, as in :func:`_sunless`. Where a cloud blocks the
    direct sun (``blocked`` > 0: the light raised as far as the sky alone leaves it,
    :func:`_diffuse_weight`) the light is diffuse and casts no shadow: there neither
    side counts as shaded ground. A smaller deficit of the local light is no such
    cloud: in a busy yard under a low sun the bodies' own shadows cover much of the
    ground between the tracks and pull its light down by a tenth to a third, while the
    direct beam and the shadows it casts are still there.
    """
    bright = np.maximum(ground[0].sum(axis=0), ground[1].sum(axis=0))
    cut = float(np.median(bright[ref])) * math.sqrt(float(np.mean(ratio)))
    sunny = blocked <= 0.0
    return sunny & (ground[0].sum(axis=0) < cut), sunny & (ground[1].sum(axis=0) < cut)


def _shadow_sides(
    reach: tuple[np.ndarray, np.ndarray] | None, clear: np.ndarray, across: np.ndarray
) -> tuple[float, ...]:
    """Signs of ``across`` (N,) that may point to the side the shadows fall to.

    A body shades the shoulder on its shadow side and leaves the other in the light;
    a bed in a neighbour's shadow shows the reverse. Where the clear bodies (``clear``)
    with one shoulder in shadow (``reach``, :func:`_shaded_ground`) agree on a side as
    much as :data:`SHADOW_AGREE` (bodies outnumber the shaded beds taken for bodies),
    that side alone; otherwise (or without ``reach``) both.
    """
    if reach is None:
        return (1.0, -1.0)
    one = clear & (reach[0] ^ reach[1])
    if one.sum() < SHADOW_MIN_STATIONS:
        return (1.0, -1.0)
    pos = float(np.mean(np.where(reach[0], across, -across)[one] > 0))
    if max(pos, 1.0 - pos) < SHADOW_AGREE:
        return (1.0, -1.0)
    return (1.0,) if pos > 0.5 else (-1.0,)


def _neighbour_shadow(
    std: np.ndarray,
    m: np.ndarray,
    members: np.ndarray,
    dark: np.ndarray,
    rails: np.ndarray,
    frames: Sequence[TrackFrame],
    z: np.ndarray,
    seen: np.ndarray,
    *,
    reach: tuple[np.ndarray, np.ndarray] | None = None,
    shadow: np.ndarray | None = None,
    lean: np.ndarray | None = None,
    bands: Sequence[str] | None = None,
    shade: np.ndarray | None = None,
    elevation_deg: float | None = None,
) -> np.ndarray:
    """Body evidence against empty track in the shadow of a body on the neighbouring track.

    All shadows of a scene fall the same way: with a low sun a body on one track shades
    the whole bed of the neighbour on its shadow side, which then reads as a stretch of
    a darker, bluer (sky light) copy of empty track with the rails faint or gone, as
    long as the caster. The scene shows how. Beside its clear bodies (first-pass ``z``
    well above :data:`Z_THRESHOLD`) the darker neighbour beds on the shadow side are
    mostly shaded empty track, one colour (ballast or snow is one colour, cars come in
    many), while on the sun side they are bodies: of the two sides across the tracks,
    the shadow side is the one whose darker neighbour beds share a tint (colour per unit
    brightness, relative to empty track) that sky light can give. That tint and the
    range of depths of those beds make the shaded bed. Where the sun-side neighbour of
    a station is occupied (first pass, widened by :data:`NEIGHBOUR_REACH_M` for the
    shadow's along-track lean), a station of that colour is explained as shaded empty
    track at a small prior penalty (:data:`NEIGHBOUR_SHADE_PRIOR`), the missing rails
    weighing only :data:`NEIGHBOUR_RAIL_WEIGHT` of their usual part; a car standing in
    the shadow keeps its own colour (a flat car's snowy deck also hides the rails).

    With the sun's elevation known, the shadow's reach follows from the geometry: a
    body of height ``h`` throws its shadow ``h / tan(elevation)`` away from the sun,
    across the tracks and along them. Along them it runs past the caster's end on the
    shadow side as far as the tallest body (:data:`TALL_BODY_HEIGHT_M`) throws it, if
    that is beyond the usual :data:`NEIGHBOUR_REACH_M`. Across them it covers a share
    of the neighbour's bed that grows with the caster's height and shrinks with the spacing
    (from none up to what the tallest body covers): the bed is then a mix of lit empty
    track and empty track in full shadow of the scene's shadow colour (``shade``), a
    second explanation beside the learned tint and depths, which come from the
    neighbours of whichever bodies the scene has (a bed fully shaded by a locomotive is
    darker and bluer than the half-shaded beds beside open cars).

    Parameters
    ----------
    std : numpy.ndarray
        (b, N) station colours in noise units.
    m : numpy.ndarray
        (b,) empty-track colour, same units.
    members, seen : numpy.ndarray
        (N,) empty-mode and observed stations.
    dark : numpy.ndarray
        (b,) dark offset (haze), same units.
    rails : numpy.ndarray
        (N,) log-ratio of "no rails" to "rails" (the better side, :func:`_side_rails`).
    frames : sequence of TrackFrame
        Sampling geometry of the tracks whose stations, concatenated, make up ``N``.
    z : numpy.ndarray
        (N,) first-pass evidence (``Z_THRESHOLD`` + log-likelihood ratio).
    reach : (numpy.ndarray, numpy.ndarray), optional
        Per side (left +, right -), stations whose shoulder is in shadow
        (:func:`_shaded_ground`). Given, the shadow must cross the ground between the
        tracks: only stations whose sun-side shoulder is shaded are explained (the sun
        high, a neighbour's shadow stops short of the bed and a dark car beside a busy
        track stays a car).
    shadow : numpy.ndarray, optional
        (2,) direction the shadows fall to, from the sun (:func:`_shadow_direction`).
        Given, it names the shadow side of each track (:func:`_sun_across`) instead of
        the clear bodies, and no shade is cast across a track the sun runs along.
    lean : numpy.ndarray, optional
        (N,) how much darker the left shoulder is than the right (any monotone measure).
        With ``shadow``, only clear bodies with their shadow-side shoulder the darker
        teach the shade: a bed in a neighbour's shadow taken for a body shows the reverse.

    bands : sequence of str, optional
        Band names of ``std``. The test that the shadow's tint is sky light compares
        blue with red and bounds the visible bands only (sky light has little
        near-infrared: shade darkens it most). Without names, the first band is taken
        for red and the last for blue, all bands bounded.
    shade : numpy.ndarray, optional
        (b,) the scene's shadow colour learned on the ground beside its clear bodies
        (:func:`_shadow_ratio`, no offset). A tint nearer to it than to neutral in every
        visible band is sky light too, however blue (a clear winter sky).
    elevation_deg : float, optional
        Sun elevation at acquisition. Given with ``shadow`` and ``shade``, the shadow's
        reach along and across the tracks is modelled (above).

    Returns
    -------
    numpy.ndarray
        (N,) evidence under the neighbour-shadow hypothesis, ``inf`` where it does not
        apply (no shadow side learned, no occupied neighbour on the sun side), never
        below ``Z_THRESHOLD - NEIGHBOUR_DOUBT`` (inconclusive, not surely empty).
    """
    none = np.full(z.shape, np.inf)
    clear = seen & (z >= Z_THRESHOLD + SHADOW_CLEAR_Z)
    if members.sum() < 20 or clear.sum() < SHADOW_MIN_STATIONS:
        return none
    red, blue, visible = 0, std.shape[0] - 1, np.arange(std.shape[0])
    if bands is not None and {"red", "blue"} <= set(bands):
        red, blue = list(bands).index("red"), list(bands).index("blue")
        visible = np.array([i for i, b in enumerate(bands) if b in ("red", "green", "blue")])
    xy, normals, owner = _station_geometry(frames)
    n_all = xy.shape[0]
    mid = 0.5 * (NEIGHBOUR_M[0] + NEIGHBOUR_M[1])
    half = 0.5 * (NEIGHBOUR_M[1] - NEIGHBOUR_M[0])
    # The station of another track across from each station on either side (-1: none).
    nb = []
    for found in _across(xy, normals, owner, mid, 4, half):
        idx = np.minimum(found, n_all - 1)
        ok = (found < n_all) & (owner[idx] != owner[:, None]) & seen[idx]
        first = np.argmax(ok, axis=1)
        rows = np.arange(n_all)
        nb.append(np.where(ok[rows, first], idx[rows, first], -1))
    d0 = np.minimum(dark, 0.9 * m)
    level = np.log(np.maximum((std - d0[:, None]).sum(axis=0), 1e-3))
    # The shaded bed: a darker copy of empty track, tinted (sky light on snow is blue).
    ratio = (std - d0[:, None]) / np.maximum(m - d0, 1e-3)[:, None]
    bright = ratio.mean(axis=0)
    tint_all = ratio / np.maximum(bright, 1e-3)[None]
    # A station's tint is no surer than its noise (one unit per band) allows: darker
    # beds scatter more about the shadow's tint.
    tint_sd = math.sqrt(float(np.sum(np.maximum(m - d0, 1e-3) ** -2.0)))
    tint_tol = np.hypot(NEIGHBOUR_TINT_TOL, tint_sd / np.maximum(bright, 1e-3))
    # Which way the shadows fall: beside the clear bodies, the darker neighbour beds on
    # the shadow side are mostly shaded empty track, of one colour; on the sun side they
    # are bodies (of many colours) or shaded beds taken for bodies.
    axis = np.linalg.eigh(normals[clear].T @ normals[clear])[1][:, -1]
    sun_across = _sun_across(shadow, normals, clear)
    if sun_across is not None and lean is not None:
        # A body darkens its own shadow-side shoulder; a bed in a neighbour's shadow
        # has its sun-side shoulder shaded as well, and is no caster.
        casters = clear & (lean * sun_across > 0)
        if casters.sum() >= SHADOW_MIN_STATIONS:
            clear = casters
    sides = (1.0,) if sun_across is not None else _shadow_sides(reach, clear, normals @ axis)
    best = None
    for sign in sides:
        across = sign * (normals @ axis) if sun_across is None else sun_across
        shade_nb = np.where(across > 0, nb[0], nb[1])
        # Darker than the shadow-side neighbour beds of empty track.
        lit_nb = shade_nb[members & (shade_nb >= 0)]
        if lit_nb.size < SHADOW_MIN_STATIONS:
            continue
        cand = shade_nb[clear & (shade_nb >= 0)]
        if reach is not None:
            # Only beds the shadow can be crossing (see ``reach`` below) teach its colour.
            crossing = np.where(across > 0, reach[1] & ~reach[0], reach[0] & ~reach[1])
            cand = cand[crossing[cand]]
        usual = float(np.median(level[lit_nb]))
        cand = cand[(level[cand] < usual - NEIGHBOUR_DARKER) & (bright[cand] > 0.2)]
        if cand.size < SHADOW_MIN_STATIONS:
            continue
        # The commonest tint of those beds (mean shift from their median).
        tint = np.median(tint_all[:, cand], axis=1)
        for _ in range(8):
            dev = np.linalg.norm(tint_all[:, cand] - tint[:, None], axis=0)
            near = cand[dev <= tint_tol[cand]]
            if near.size == 0:
                break
            tint = np.median(tint_all[:, near], axis=1)
        # Light from the sky alone is no redder and not much bluer than daylight.
        off = np.abs(tint[visible] - 1.0)
        sky = tint[blue] >= tint[red] and float(np.max(off)) <= NEIGHBOUR_MAX_TINT
        if not sky and shade is not None and tint[blue] >= tint[red]:
            # As blue as the scene's own shadows on the ground: sky light as well.
            own = shade / max(float(shade.mean()), 1e-6)
            sky = bool(np.all(np.abs(tint[visible] - own[visible]) < off))
        enough = near.size >= max(SHADOW_MIN_STATIONS, NEIGHBOUR_SHARE * cand.size)
        if sky and enough and (best is None or near.size > best[0].size):
            best = (near, tint, across, sign * axis if sun_across is None else shadow)
    if best is None:
        logger.debug("no neighbour shadow")
        return none
    near, tint, across, side = best
    sun_nb = np.where(across > 0, nb[1], nb[0])
    k_lo, k_hi = np.percentile(bright[near], (5.0, 95.0)) * NEIGHBOUR_DEPTH_SLACK
    line = tint * (m - d0)
    k = np.clip((line @ (std - d0[:, None])) / float(line @ line), k_lo, k_hi)
    resid = std - d0[:, None] - k[None] * line[:, None]
    spread = np.maximum(NEIGHBOUR_MIN_SPREAD, 1.4826 * np.median(np.abs(resid[:, near]), axis=1))
    logger.debug(
        "neighbour shadow: side %s, tint %s, depth %.2f-%.2f, spread %s of %d beds",
        np.round(side, 2),
        np.round(tint, 2),
        k_lo,
        k_hi,
        np.round(spread, 1),
        near.size,
    )
    # Occupied sun-side neighbour, widened along its own track by the shadow's lean.
    occupied = z >= Z_THRESHOLD
    step = frames[0].step_m
    grow = max(1, int(round(NEIGHBOUR_REACH_M / step)))
    sizes = [f.x.shape[0] for f in frames]
    parts = np.split(occupied, np.cumsum(sizes)[:-1])
    run = None
    if sun_across is not None and elevation_deg is not None and elevation_deg > 0.0:
        run = 1.0 / math.tan(math.radians(max(elevation_deg, 1.0)))
    if run is None:
        occupied = np.concatenate([ndi.maximum_filter1d(p, 2 * grow + 1) for p in parts])
    else:
        # On the shadow side the shade runs past the caster's end as far as the tallest
        # body throws it along the track (a low sun: well beyond the usual reach).
        widened = []
        for p, f in zip(parts, frames, strict=True):
            lean_m = float(np.median(_tangents(f) @ side)) * TALL_BODY_HEIGHT_M * run
            far = max(grow, int(math.ceil(abs(lean_m) / step)))
            widened.append(_widen(p, far, grow) if lean_m >= 0 else _widen(p, grow, far))
        occupied = np.concatenate(widened)
    cast = (sun_nb >= 0) & occupied[np.maximum(sun_nb, 0)]
    if sun_across is not None:
        cast &= np.abs(across) >= SUN_ACROSS_MIN
    if reach is not None:
        # Shade from the sun side, ending before the far shoulder: a body there would
        # shade that shoulder itself.
        cast &= np.where(across > 0, reach[1] & ~reach[0], reach[0] & ~reach[1])
    d = np.linalg.norm(resid / spread[:, None], axis=0)
    if run is not None and shade is not None:
        # The bed partly covered by the neighbour's shadow: lit empty track mixed with
        # empty track in full shadow. The shadow of the roof's edge reaches
        # BODY_EDGE_M + h run |across| from the caster's centre line, so the share of
        # the bed's body zone it covers is bounded by what the tallest body throws.
        gap = np.linalg.norm(xy - xy[np.maximum(sun_nb, 0)], axis=1)
        cover = _bed_cover(gap, across, run, TALL_BODY_HEIGHT_M)
        full = m * (1.0 - shade)
        # Shade a little deeper than the ground's full shadow is shade too (the sky seen).
        limit = cover * SHADOW_DEPTH_MAX
        share = np.clip(((m[:, None] - std).T @ full) / float(full @ full), 0.0, limit)
        mixed = std - (m[:, None] - share[None] * full[:, None])
        d = np.minimum(d, np.linalg.norm(mixed / spread[:, None], axis=0))
    nbands = std.shape[0]
    term = NEIGHBOUR_SHADE_PRIOR + np.clip(d**2 / 2 - 2.0 * nbands, -2.0 * nbands, 8.0)
    term = term + NEIGHBOUR_RAIL_WEIGHT * np.maximum(rails, 0.0)
    # Explained, not excluded: a car the colour of the shaded bed could stand there.
    term = np.maximum(term, -NEIGHBOUR_DOUBT)
    return np.where(cast & seen, Z_THRESHOLD + term, np.inf)


def _station_geometry(
    frames: Sequence[TrackFrame],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (N, 2), unit normals (N, 2) and track index (N,) of every station."""
    xy = np.column_stack(
        [np.concatenate([f.x for f in frames]), np.concatenate([f.y for f in frames])]
    )
    normals = np.column_stack(
        [np.concatenate([f.nx for f in frames]), np.concatenate([f.ny for f in frames])]
    )
    owner = np.concatenate([np.full(f.x.shape, k) for k, f in enumerate(frames)])
    return xy, normals, owner


def _tangents(frame: TrackFrame) -> np.ndarray:
    """(n, 2) unit tangents of a track's stations, towards growing ``s_m``."""
    # The left normal is the tangent turned a quarter anticlockwise.
    return np.column_stack([frame.ny, -frame.nx])


def _bed_cover(gap_m: np.ndarray, across: np.ndarray, run: float, height_m: float) -> np.ndarray:
    """Share (0-1) of a neighbour bed's body zone shaded by a body on the sun side.

    A body of height ``height_m`` throws the shadow of its roof's edge
    ``height_m * run`` away from the sun (``run`` = 1 / tan(elevation)), of which
    ``across`` (the shadow direction's share across the tracks) lies across them, so it
    shades the ground out to ``BODY_EDGE_M + height_m * run * |across|`` from its own
    centre line. The neighbour's body zone (:data:`BODY_HALF_WIDTH_M` either side of its
    centre line, ``gap_m`` away) is covered from its near edge up to there.

    A 5 m locomotive under a 31 deg sun, its shadow 35 deg off the tracks, beside beds
    5.1, 5.4 and 6 m away:

    >>> run = 1.0 / math.tan(math.radians(31.3))
    >>> cover = _bed_cover(np.array([5.1, 5.4, 6.0]), np.full(3, 0.57), run, 5.0)
    >>> np.round(cover, 2).tolist()
    [0.94, 0.83, 0.61]
    """
    reach_m = BODY_EDGE_M + height_m * run * np.abs(across)
    near_edge = gap_m - BODY_HALF_WIDTH_M
    return np.clip((reach_m - near_edge) / (2.0 * BODY_HALF_WIDTH_M), 0.0, 1.0)


def _widen(mask: np.ndarray, back: int, ahead: int) -> np.ndarray:
    """(n,) True where ``mask`` holds within ``back`` stations before or ``ahead`` after.

    Station ``j`` of the result looks at ``mask[j - back : j + ahead + 1]``: a run of
    ``mask`` is extended by ``back`` stations towards growing index and ``ahead`` towards
    falling index.

    >>> _widen(np.array([0, 0, 1, 0, 0, 0], bool), 2, 1).astype(int).tolist()
    [0, 1, 1, 1, 1, 0]
    """
    n = mask.shape[0]
    counts = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    j = np.arange(n)
    lo = np.clip(j - back, 0, n)
    hi = np.clip(j + ahead + 1, 0, n)
    return counts[hi] - counts[lo] > 0


def _snowy(observations: Sequence[TrackObservation]) -> bool:
    """Snow on more than :data:`ILLUM_MAX_SNOW` of the observed track."""
    seen = sum(int(o.observed.sum()) for o in observations)
    snow = sum(int((o.observed & o.snow).sum()) for o in observations)
    return snow > ILLUM_MAX_SNOW * max(seen, 1)


def _snow_ground(ground: Sequence[np.ndarray], bands: Sequence[str], seen: np.ndarray) -> bool:
    """Whether the sunlit ground between the tracks is snow, from its brightness.

    Parameters
    ----------
    ground : sequence of numpy.ndarray
        (b, N) shoulder colours, each side.
    bands : sequence of str
        Band names along ``b``.
    seen : numpy.ndarray
        (N,) observed stations.

    Returns
    -------
    bool
        The :data:`ILLUM_SUN_QUANTILE` percentile of the observed shoulders' brightness
        reaches :data:`SNOW_LIT_BRIGHT`: whatever share of the ground the cars and their
        shadows cover, the brightest of it is in the sun, and only snow is that bright.

    Examples
    --------
    >>> seen = np.ones(40, bool)
    >>> snow = np.full((3, 40), 0.75)
    >>> snow[:, :30] = 0.3  # most of the ground in shade or under cars
    >>> _snow_ground([snow, snow], ("red", "green", "blue"), seen)
    True
    >>> _snow_ground([snow * 0.6, snow * 0.6], ("red", "green", "blue"), seen)
    False
    """
    vis = gray_bands(bands)
    b = np.concatenate([g[vis].mean(axis=0)[seen] for g in ground])
    return b.size >= 20 and float(np.percentile(b, ILLUM_SUN_QUANTILE)) >= SNOW_LIT_BRIGHT


def _snow_share(observations: Sequence[TrackObservation]) -> float:
    """Share of the observed track on snow."""
    seen = sum(int(o.observed.sum()) for o in observations)
    snow = sum(int((o.observed & o.snow).sum()) for o in observations)
    return snow / max(seen, 1)


def _illumination(
    observations: Sequence[TrackObservation],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per track, the dark offset (b,) and per-station gain (b, n) that undo cloud shadow.

    :func:`_light` without the needed gain.
    """
    return [(dark, gain) for dark, gain, _ in _light(observations)]


def _light(
    observations: Sequence[TrackObservation],
    sun: tuple[float, float] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per track, the dark offset (b,), the gain (b, n) applied and the gain (b, n) needed.

    The applied gain undoes cloud shadow; the needed one is what the local light alone
    asked for, before the limit of :data:`ILLUM_SHADE_FLOOR`.

    A cloud shadow scales the light on ground, ballast and bodies alike over tens of
    metres; haze adds a constant. The local light at a station is the
    :data:`ILLUM_QUANTILE` percentile, over the stations of every track within
    :data:`ILLUM_RADIUS_M`, of the brighter shoulder (ground between the tracks: no body
    reaches it, a body's own shadow falls on the other side). The constant is the
    darkest percent of the scene's strips (dark-object subtraction), or where that is
    the shaded bed itself (no dark object in view) the level located by empty track in
    sun and in shade (:func:`_dark_from_empty`). Where the light is
    below full sun (:data:`ILLUM_SUN_QUANTILE` over all stations), values become
    ``dark + (v - dark) x gain``: a body in cloud shadow is judged against empty track
    in the same light as the rest of the yard. A uniformly lit scene is unchanged, and
    so is a scene with snow on more than :data:`ILLUM_MAX_SNOW` of its tracks (snow
    brightens the ground, not the light: a cloud shadow over snow is not undone). The
    gain stops at ``1 / ILLUM_SHADE_FLOOR``: a local light nearer the dark level than
    any cloud shadow leaves (the dark level taken from shaded ground itself where no
    dark object is in view, or shaded ground beside a lit patch) is not undone beyond
    that, and the needed gain keeps the rest.

    The full-sun level is lowered where empty track denies the shade the shoulders show
    (a bright foreign shoulder, :func:`_sun_reference`). With ``sun`` (azimuth clockwise
    from grid north, elevation, degrees), the shoulders between busy tracks under a low
    sun lie in the bodies' own shadows: where ground no body can shade
    (:func:`_open_sides`) nearby is brighter, that is the local light
    (:func:`_open_light`).
    """
    nb = observations[0].values.shape[0]
    step = observations[0].frame.step_m
    every = max(1, int(round(2.0 / step)))
    pts, lvl, owner, samples = [], [], [], []
    # Empty track in sun and in shade locates the dark level (_dark_from_empty).
    bed, grain, rails = [], [], []
    offs = observations[0].frame.offsets_m
    body = np.abs(offs) <= BODY_HALF_WIDTH_M
    rail = np.abs(offs) <= RAIL_HALF_WIDTH_M
    width = max(0.12, 0.8 * step)
    analytic = _unit(np.exp(-0.5 * ((np.abs(offs[rail]) - RAIL_OFFSET_M) / width) ** 2))
    gidx = gray_bands(observations[0].bands)
    smooth = max(1, int(round(0.75 / step)))
    shadow = _shadow_direction(sun)
    reach = None
    lvl_open: list[np.ndarray] = []
    if shadow is not None and sun is not None:
        reach = (shadow, SHADE_HEIGHT_M / math.tan(math.radians(sun[1])))
        # Every station of every track, searched once per track.
        station_tree = cKDTree(
            np.column_stack(
                [
                    np.concatenate([o.frame.x for o in observations]),
                    np.concatenate([o.frame.y for o in observations]),
                ]
            )
        )
    for k, o in enumerate(observations):
        offs = o.frame.offsets_m
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sides = [
                np.nanmean(o.values[:, sel], axis=1)
                for sel in (
                    (offs >= SHOULDER_M[0]) & (offs <= SHOULDER_M[1]),
                    (offs <= -SHOULDER_M[0]) & (offs >= -SHOULDER_M[1]),
                )
            ]
        sm = np.where(sides[0].sum(axis=0) >= sides[1].sum(axis=0), sides[0], sides[1])
        ok = o.observed & np.isfinite(sm).all(axis=0)
        idx = np.flatnonzero(ok)[::every]
        pts.append(np.column_stack([o.frame.x[idx], o.frame.y[idx]]))
        lvl.append(sm[:, idx])
        if reach is not None:
            # Only a shoulder no body can shade measures the light (see _open_sides).
            xy = np.column_stack([o.frame.x[idx], o.frame.y[idx]])
            nrm = np.column_stack([o.frame.nx[idx], o.frame.ny[idx]])
            open_l, open_r = _open_sides(xy, nrm, station_tree, *reach)
            left, right = sides[0][:, idx], sides[1][:, idx]
            both = np.where(left.sum(axis=0) >= right.sum(axis=0), left, right)
            pick = np.where(open_l, np.where(open_r, both, left), right)
            lvl_open.append(np.where((open_l | open_r)[None], pick, np.nan))
        owner.append(np.column_stack([np.full(idx.size, k), idx]))
        if idx.size:
            samples.append(o.values[:, :, idx].reshape(nb, -1))
        # Mean and spread across the bed, averaged over a few sampled stations (noise).
        zone = _smooth_along(np.nan_to_num(o.values[:, body][:, :, idx]), smooth)
        bed.append(zone.mean(axis=1))
        grain.append(zone.std(axis=1))
        prof = _smooth_along(np.nan_to_num(o.values[gidx][:, rail].mean(axis=0)), smooth)
        rails.append(np.abs(analytic @ _unit(prof[:, idx])))
    unit = [
        (np.zeros(nb), np.ones((nb, o.values.shape[2])), np.ones((nb, o.values.shape[2])))
        for o in observations
    ]
    p = np.concatenate(pts)
    # With snow about, the ground's brightness maps the snow, not the light.
    if p.shape[0] < 20 or _snowy(observations):
        return unit
    ref = np.concatenate(lvl, axis=1)  # (b, R)
    own = np.concatenate(owner)
    allv = np.concatenate(samples, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dark = np.nanpercentile(allv, ILLUM_DARK_PERCENTILE, axis=1)
    tree = cKDTree(p)
    near, n_near = _ball_groups(tree, ILLUM_RADIUS_M)
    light = np.concatenate(
        [
            _padded_percentile(ref, near[g0 : g0 + 2048], n_near[g0 : g0 + 2048], ILLUM_QUANTILE)
            for g0 in range(0, n_near.size, 2048)
        ],
        axis=1,
    )
    typical = np.percentile(light, ILLUM_SUN_QUANTILE, axis=1)
    dark = np.minimum(dark, 0.5 * typical)
    dark = _dark_from_empty(
        *(np.concatenate(x, axis=1) for x in (bed, grain)),
        light,
        np.concatenate(rails),
        dark,
        typical,
    )
    typical = _sun_reference(
        np.concatenate(bed, axis=1), light, np.concatenate(rails), dark, typical
    )
    span = typical - dark
    if reach is not None:
        # The shoulders between busy tracks under a low sun lie in the bodies' shadows,
        # as dark as a cloud's: where ground open to the sun nearby is brighter, that is
        # the light (a cloud shadows open ground too), never darker than the shoulders.
        light = np.fmax(light, _open_light(tree, near, n_near, np.concatenate(lvl_open, axis=1)))
    out = []
    for k, o in enumerate(observations):
        sel = own[:, 0] == k
        n = o.values.shape[2]
        if not sel.any():
            out.append((dark, np.ones((nb, n)), np.ones((nb, n))))
            continue
        s_ref = o.frame.s_m[own[sel, 1]]
        lk = np.stack([np.interp(o.frame.s_m, s_ref, light[b, sel]) for b in range(nb)])
        # Only less light than usual is undone: a cloud shadow scales everything, while
        # more light is snow on the ground or thin cloud adding its own (not a scale).
        above = np.minimum(lk - dark[:, None], span[:, None])
        need = span[:, None] / np.maximum(above, 1e-6 * span[:, None])
        gain = np.minimum(need, 1.0 / ILLUM_SHADE_FLOOR)
        # Ground varies a little on its own (dirt, weeds, the shadows of the cars): a
        # deficit within that is left alone, a larger one undone in full.
        excess = gain - 1.0
        gain = 1.0 + excess * np.clip(excess / (ILLUM_TOLERANCE - 1.0) - 1.0, 0.0, 1.0)
        out.append((dark, gain, need))
    return out


def _open_sides(
    xy: np.ndarray, normals: np.ndarray, stations: cKDTree, shadow: np.ndarray, length: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per side (left +, right -), whether each station's (n,) shoulder is open to the sun.

    ``xy`` and ``normals`` (n, 2) are the stations, ``stations`` a tree of every station
    of every track, ``shadow`` the unit direction the shadows fall to and ``length`` the
    longest shadow a body casts (:data:`SHADE_HEIGHT_M` over the tangent of the sun's
    elevation). A shoulder is open where no track passes within a body's half width
    (:data:`BODY_EDGE_M`) of the line from it towards the sun over that length: no body,
    on its own track or the next, can shade it, whether one stands there or not.
    """
    ts = np.arange(0.0, length + 0.5, 0.5)
    out = []
    for sign in (1.0, -1.0):
        foot = xy + sign * float(np.mean(SHOULDER_M)) * normals
        # Every point of every line towards the sun in one query.
        line = foot[:, None, :] - ts[None, :, None] * np.asarray(shadow)[None, None, :]
        d, _ = stations.query(line.reshape(-1, 2), distance_upper_bound=BODY_EDGE_M)
        out.append(~np.isfinite(d).reshape(line.shape[:2]).any(axis=1))
    return out[0], out[1]


def _open_light(tree: cKDTree, near: np.ndarray, n_near: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(b, R) local light at the sampled stations of ``tree`` from their open shoulders.

    ``ref`` (b, R) is NaN where neither shoulder is open to the sun (:func:`_open_sides`);
    ``near`` and ``n_near`` are the stations' groups within :data:`ILLUM_RADIUS_M`
    (:func:`_ball_groups`). The light is the :data:`ILLUM_QUANTILE` percentile of the
    open shoulders within that radius, or twice that where none is nearer, NaN where none
    is.
    """
    nb, n = ref.shape
    light = np.full((nb, n), np.nan)
    good = np.isfinite(ref).all(axis=0)
    if not good.any():
        return light
    vals = np.where(good, ref, 0.0)
    todo = np.ones(n, bool)
    for groups in ((near, n_near), None):
        idx, cnt = groups if groups is not None else _ball_groups(tree, 2.0 * ILLUM_RADIUS_M)
        # Each group's open members first, in their order; the rest is padding.
        keep = good[idx] & (np.arange(idx.shape[1])[None, :] < cnt[:, None])
        order = np.argsort(~keep, axis=1, kind="stable")
        members, count = np.take_along_axis(idx, order, axis=1), keep.sum(axis=1)
        rows = np.flatnonzero(todo & (count > 0))
        for r0 in range(0, rows.size, 2048):
            r = rows[r0 : r0 + 2048]
            light[:, r] = _padded_percentile(vals, members[r], count[r], ILLUM_QUANTILE)
        todo[rows] = False
        if not todo.any():
            break
    return light


def _sun_reference(
    bed: np.ndarray,
    light: np.ndarray,
    rails: np.ndarray,
    dark: np.ndarray,
    typical: np.ndarray,
) -> np.ndarray:
    """(b,) full-sun light, lowered where the beds deny the shade the shoulders show.

    ``bed`` and ``light`` (b, R) are the bed's mean and the local light (:func:`_light`)
    at sampled stations, ``rails`` (R,) their profiles' correlation with a pair of rails,
    ``dark`` the dark level and ``typical`` the full-sun light taken from the shoulders.
    A cloud shadow lowers the light on the bed of empty track as on the ground beside it.
    A bright foreign shoulder (a concrete platform, a road) raises the local light at the
    stations beside it without any more sun there: every other station then reads as
    shaded, although its empty track is as bright as that beside the bright shoulder.
    Where empty track at the stations read as shaded (a gain above
    :data:`ILLUM_TOLERANCE`) keeps, above the dark level, at least ``1 / ILLUM_TOLERANCE``
    of the brightness of empty track read as in full sun, the shade is not there; the full
    sun is then taken from those stations' own light (:data:`ILLUM_SUN_QUANTILE`).
    """
    above = np.maximum(light - dark[:, None], 1e-6)
    level = ((typical - dark)[:, None] / above).mean(axis=0)
    empty = rails >= DARK_FIT_RAILS
    sun = empty & (level <= ILLUM_TOLERANCE)
    shade = empty & (level > ILLUM_TOLERANCE)
    if min(int(sun.sum()), int(shade.sum())) < DARK_FIT_MIN_STATIONS:
        return typical
    lit = np.median(bed[:, sun], axis=1) - dark
    kept = (np.median(bed[:, shade], axis=1) - dark) / np.maximum(lit, 1e-9)
    if float(np.mean(kept)) < 1.0 / ILLUM_TOLERANCE:
        return typical
    return np.minimum(
        typical, np.percentile(light[:, level > ILLUM_TOLERANCE], ILLUM_SUN_QUANTILE, axis=1)
    )


def _dark_from_empty(
    bed: np.ndarray,
    grain: np.ndarray,
    light: np.ndarray,
    rails: np.ndarray,
    dark: np.ndarray,
    typical: np.ndarray,
) -> np.ndarray:
    """(b,) dark level located by empty track in sun and in cloud shadow, else ``dark``.

    ``bed``, ``grain`` and ``light`` (b, R) are the bed's mean and across-track spread
    (rails, ballast grain) and the local light (:func:`_light`) at sampled stations,
    ``rails`` (R,) their profiles' correlation with a pair of rails, ``dark`` the darkest
    percent of the strips and ``typical`` the full-sun light. A cloud shadow scales all
    light above the dark level ``D`` by the same share ``s``: the bed's spread by ``s``,
    its mean to ``D + s (mean - D)``. Between the rail-showing stations in full sun and
    those in shade deeper than :data:`DARK_FIT_MIN_GAIN` the spreads give ``s`` and the
    means then ``D``, per band. The darkest percent (where no dark object is in view, the
    shaded ground itself, far above ``D``) is the upper bound: nothing is darker than the
    haze. It is kept where there are too few such stations (:data:`DARK_FIT_MIN_STATIONS`)
    or the spreads do not show a shade (:data:`DARK_FIT_RATIO_TOL`).
    """
    need = (typical - dark)[:, None] / np.maximum(light - dark[:, None], 1e-6)
    level = need.mean(axis=0)
    empty = rails >= DARK_FIT_RAILS
    sun = empty & (level <= ILLUM_TOLERANCE)
    shade = empty & (level >= DARK_FIT_MIN_GAIN)
    if min(int(sun.sum()), int(shade.sum())) < DARK_FIT_MIN_STATIONS:
        return dark
    ms, mh = np.median(bed[:, sun], axis=1), np.median(bed[:, shade], axis=1)
    left = np.median(grain[:, shade], axis=1) / np.maximum(np.median(grain[:, sun], axis=1), 1e-9)
    # Noise does not scale with the light and spreads the shade's share upwards; within
    # the tolerance the smaller share, so the higher dark level, is taken.
    left = left * (1.0 - DARK_FIT_RATIO_TOL)
    located = (left > 0.0) & (left < 1.0 / DARK_FIT_MIN_GAIN)
    fit = (mh - left * ms) / np.where(located, 1.0 - left, 1.0)
    fit = np.clip(fit, 0.0, dark)
    # Where the darkest percent is a dark object (a black car, a deep shadow) it is the
    # better measure of the haze; where it is the shaded bed's own darker parts, not.
    share = float(np.mean((dark - fit) / np.maximum(mh - fit, 1e-9)))
    if not located.all() or share < DARK_OBJECT_SHARE:
        return dark
    return fit


def _cloud_shade_weight(gain: np.ndarray, need: np.ndarray | None = None) -> np.ndarray:
    """Per station (n,), 0-1: how far the light was raised to undo a cloud shadow.

    ``gain`` is the (b, n) gain of :func:`_illumination`; the weight is the share of the
    correction applied there (none within :data:`ILLUM_TOLERANCE`, all of it from twice
    that deficit), so it is 0 in full light and in scenes left uncorrected (snow). With
    ``need``, the (b, n) gain the local light asked for (:func:`_light`), the weight is
    also scaled by the share of that correction made: where the gain stopped at
    :data:`ILLUM_SHADE_FLOOR`, the rest of the cloud's shade is still on the bed.
    """
    excess = gain.mean(axis=0) - 1.0
    weight = np.clip(excess / (ILLUM_TOLERANCE - 1.0) - 1.0, 0.0, 1.0)
    if need is None:
        return weight
    wanted = need.mean(axis=0) - 1.0
    made = np.minimum(need, 1.0 / ILLUM_SHADE_FLOOR).mean(axis=0) - 1.0
    return weight * np.clip(made / np.maximum(wanted, 1e-9), 0.0, 1.0)


def _diffuse_weight(gain: np.ndarray) -> np.ndarray:
    """Per station (n,), 0-1: how surely a cloud blocks the direct sun (:data:`DIFFUSE_GAIN`).

    ``gain`` is the (b, n) gain of :func:`_light`. The sky alone gives a fifth to a half
    of full sun (gains 2-5); a smaller deficit is thin cloud or the ground's own
    variation, with the direct beam and its shadows still there.
    """
    lo, hi = DIFFUSE_GAIN
    return np.clip((gain.mean(axis=0) - lo) / (hi - lo), 0.0, 1.0)


def _covered_shoulder(
    ground: Sequence[list[np.ndarray]],
    empty: np.ndarray,
    gains: Sequence[tuple[np.ndarray, np.ndarray]],
    under: np.ndarray,
) -> np.ndarray:
    """Penalty (N,) on the bed-to-shoulder contrast as an explanation of empty track.

    In a busy yard the ground between tight cars is covered by the bodies on the next
    tracks, and then the bed-to-shoulder contrast of a body compares it with another body.
    Under a corrected cloud shadow, where the light is diffuse and bodies cast little
    shadow, a brighter shoulder much darker than those beside empty track (``empty``)
    is such a covered one (:data:`COVERED_SHOULDER`); in sunlight a neighbour's shadow
    darkens empty track and both its shoulders alike, so nothing changes there.
    """
    lit = np.maximum(*[np.concatenate(g, axis=1).mean(axis=0) for g in ground])
    if not empty.any() or not gains:
        return np.zeros(lit.shape)
    dark = float(np.mean(gains[0][0]))
    ref = float(np.median(lit[empty])) - dark
    if ref <= 0:
        return np.zeros(lit.shape)
    rel = (lit - dark) / ref
    lo, hi = COVERED_SHOULDER
    return CLOUD_SHADE_LLR * under * np.clip((hi - rel) / (hi - lo), 0.0, 1.0)


def _ball_groups(tree: cKDTree, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point of ``tree``, the indices of the points within ``radius`` (itself too).

    The members of ``tree.query_ball_point(tree.data, radius)`` (in another order), from
    the pairs within ``radius`` (:meth:`cKDTree.query_pairs`), several times faster: as
    (n, width) indices padded with 0 and the (n,) count of each row.
    """
    n = tree.n
    pairs = tree.query_pairs(radius, output_type="ndarray")
    own = np.arange(n)
    i = np.concatenate([pairs[:, 0], pairs[:, 1], own])
    j = np.concatenate([pairs[:, 1], pairs[:, 0], own])
    order = np.argsort(i.astype(np.uint16) if n < 2**16 else i, kind="stable")
    counts = np.bincount(i, minlength=n)
    idx = np.zeros((n, int(counts.max())), np.intp)
    idx[i[order], np.arange(i.size) - np.repeat(np.cumsum(counts) - counts, counts)] = j[order]
    return idx, counts


def _padded_percentile(values: np.ndarray, idx: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Per group of columns of ``values`` (b, R), the ``q``-th percentile over its columns.

    Row ``g`` of ``idx`` (G, width) holds group ``g``'s column indices in its first
    ``n[g]`` entries. The same numbers as ``np.percentile(values[:, group], q, axis=1)``
    for every group (linear interpolation, NumPy's rounding), computed at once on a
    padded, sorted block instead of one call per group (one per station, thousands per
    scene). Groups must be non-empty; ``values`` finite.
    """
    frac = np.float64(q) / 100.0
    width = idx.shape[1]
    v = values[:, idx]
    v[:, np.arange(width)[None, :] >= n[:, None]] = np.inf  # padding sorts last
    v.sort(axis=2)
    virtual = (n - 1) * frac
    lo = np.floor(virtual).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    gamma = (virtual - lo).astype(values.dtype)
    rows = np.arange(n.size)
    a, b = v[:, rows, lo], v[:, rows, hi]
    d = b - a
    # NumPy's lerp: from the nearer end, so the result never overshoots.
    return np.where(gamma >= 0.5, b - d * (1 - gamma), a + d * gamma)


def _side_rails(
    profiles: np.ndarray, offsets_m: np.ndarray, members: np.ndarray, n_bands: int
) -> list[np.ndarray]:
    """Per side of the centre line, log-ratio of "no rail" to "rail" from that side alone.

    ``profiles`` is (k, N), the across-track rail-zone profiles at ``offsets_m``. Each
    side's profile (one rail and its ballast) is normalised on its own, so a shadow over
    that whole side does not change it, and correlated with the side's empty template
    (median over the empty mode ``members``). Sides with fewer than four samples (coarse
    grids) carry no evidence of rails.
    """
    out = []
    for sign in (1.0, -1.0):
        sel = sign * offsets_m >= 0.2
        if sel.sum() < 4 or not members.any():
            out.append(np.full(profiles.shape[1], 8.0))
            continue
        sh = _unit(profiles[sel])
        ncc = _unit(np.median(sh[:, members], axis=1)) @ sh
        mu = float(np.median(ncc[members]))
        sd = max(0.1, 1.4826 * float(np.median(np.abs(ncc[members] - mu))))
        llr = _gauss_ll(ncc, 0.1, 0.4) - _gauss_ll(ncc, mu, sd)
        out.append(np.clip(llr, -4.0, 2.0 * n_bands + 4.0))
    return out


def _explain_edge(
    std: np.ndarray,
    half_std: Sequence[np.ndarray],
    outer_std: Sequence[np.ndarray],
    m: np.ndarray,
    members: np.ndarray,
    side_rail: Sequence[np.ndarray],
) -> np.ndarray:
    """Body evidence against empty track under a shadow edge along the track.

    The shadow of a car on the next track, or of a shed, often covers the bed past its
    centre line: then only the outer zone of the lit side (beyond the rail) keeps the
    empty colour, the other half is darker, and its rail still shows (a shadow scales a
    profile, it does not erase it). Distances in units of the empty mode's spread as in
    :func:`_explain_empty`.
    """
    spread = np.maximum(1.0, 1.4826 * np.median(np.abs(std[:, members] - m[:, None]), axis=1))
    mm = m / spread
    nb = std.shape[0]
    best = np.full(std.shape[1], np.inf)
    for lit, shade in ((0, 1), (1, 0)):
        d = np.linalg.norm(outer_std[lit] / spread[:, None] - mm[:, None], axis=0)
        darker = half_std[shade].sum(axis=0) < 0.9 * outer_std[lit].sum(axis=0)
        term = np.clip(d**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0) + side_rail[shade]
        best = np.minimum(best, np.where(darker, term, 8.0))
    return Z_THRESHOLD + best


def _contrast_floor(
    contrast: np.ndarray,
    colour_z: np.ndarray,
    edge: np.ndarray,
    members: np.ndarray,
    seen: np.ndarray,
) -> float:
    """Least evidence (``Z_THRESHOLD`` + log-likelihood ratio) the usual contrast can give.

    The usual bed-to-shoulder contrast (``contrast`` below :data:`Z_THRESHOLD`) is kept
    by a share ``f_e`` of the empty-mode stations and by a share ``f_b`` of the scene's
    clear bodies (colour and shadow edge both well above the threshold, ``colour_z`` and
    ``edge``): seeing it is worth at most ``log(f_b / f_e)`` against a body. Sharp scenes
    give ``f_b`` near 0 (no floor); where the shoulder is blurred into the body (coarse
    pixels) or covered by the next track's body many clear bodies keep it. ``-inf`` (no
    floor) with too few clear bodies, or where the scene's empty track mostly breaks the
    contrast (:data:`CONTRAST_CALIBRATE_SHARE`).
    """
    clear = seen & (np.minimum(colour_z, edge) >= Z_THRESHOLD + SHADOW_CLEAR_Z)
    ref = members & seen
    if clear.sum() < SHADOW_MIN_STATIONS or ref.sum() < 20:
        return -np.inf
    f_e = float(np.mean(contrast[ref] < Z_THRESHOLD))
    if f_e < CONTRAST_CALIBRATE_SHARE:
        return -np.inf
    f_b = float(np.mean(contrast[clear] < Z_THRESHOLD))
    return Z_THRESHOLD + min(math.log(max(f_b, 1e-6) / f_e), 0.0)


def _log_ratio(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    aa = np.concatenate(a, axis=1)
    bb = np.concatenate(b, axis=1)
    return np.log(np.maximum(aa, 1e-3)) - np.log(np.maximum(bb, 1e-3))


def _contrast_evidence(
    halves: Sequence[list[np.ndarray]], ground: Sequence[list[np.ndarray]], seen: np.ndarray
) -> np.ndarray:
    """Body evidence from the contrast between the track bed and the ground beside it.

    Per side, the log ratio (per band) of the body zone to the shoulder beyond where a
    body reaches. Empty track shows the scene's typical bed-to-shoulder contrast on both
    sides, whatever the light (snow, shade, haze scale both alike); a body replaces the
    bed on both sides; a neighbour's shadow or a patch of snow changes one side at most.
    The typical contrast is the densest mode of the ratios near zero, its spread that of
    the mode's stations.
    """
    q = [_log_ratio(halves[i], ground[i]) for i in (0, 1)]  # (b, N) each
    # Only the side whose shoulder is brighter: a body's own shadow darkens the other
    # shoulder (and would make a dark body look like a dark bed beside dark ground).
    g = [np.concatenate(ground[i], axis=1).sum(axis=0) for i in (0, 1)]
    lit = np.where(g[0] >= g[1], 0, 1)
    q_lit = np.where(lit[None] == 0, q[0], q[1])
    nb = q_lit.shape[0]
    usual = _usual_contrast(q_lit[:, seen])
    if usual is None:
        return np.full(seen.shape, Z_THRESHOLD - 1.0)
    m, spread = usual
    d = np.linalg.norm((q_lit - m[:, None]) / spread[:, None], axis=0)
    return Z_THRESHOLD + np.clip(d**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0)


def _flank_evidence(
    halves: Sequence[list[np.ndarray]],
    outer: Sequence[list[np.ndarray]],
    ground: Sequence[list[np.ndarray]],
    seen: np.ndarray,
    usual_at: np.ndarray,
) -> np.ndarray:
    """Body evidence from the outer zone of the lit bed half against the half as a whole.

    Empty track is ballast across its width, so beyond the rail (``outer``, from
    :data:`OUTER_M`) a half keeps its usual ratio to the whole half, in any light. A dark
    body's sunlit side need not, even where its mean over the half keeps ballast's
    contrast to the ground (:func:`_contrast_evidence`): the highlight along a curved
    roof (a tank's barrel mirrors the sun, a ridge catches it) is bright, the flank
    beyond, turning away from the sun, stays dark. The lit side is the one with the
    brighter shoulder, as in :func:`_contrast_evidence`; the usual ratio is the mode
    nearest zero among the stations ``usual_at`` (N,), those whose half keeps its usual
    contrast to the ground (mostly empty track; over all stations the mode nearest zero
    may be that of the bodies in a busy yard).

    Parameters
    ----------
    halves, outer, ground : sequence of list of numpy.ndarray
        Left (+) and right (-) bed halves, their outer zones and the shoulders beyond,
        per track (b, n) arrays, concatenated here to (b, N).
    seen, usual_at : numpy.ndarray
        (N,) bool, observed stations and stations to learn the usual ratio from.

    Returns
    -------
    numpy.ndarray
        (N,) ``Z_THRESHOLD`` + log-likelihood ratio, scaled as in
        :func:`_contrast_evidence`; below the threshold everywhere when fewer than 20
        stations or no common ratio teach the usual one.
    """
    q = [_log_ratio(outer[i], halves[i]) for i in (0, 1)]
    g = [np.concatenate(ground[i], axis=1).sum(axis=0) for i in (0, 1)]
    q_lit = np.where((g[0] >= g[1])[None], q[0], q[1])
    ref = seen & usual_at
    usual = _usual_contrast(q_lit[:, ref]) if ref.sum() >= 20 else None
    if usual is None:
        return np.full(seen.shape, Z_THRESHOLD - 1.0)
    m, spread = usual
    nb = q_lit.shape[0]
    # Only a flank darker than usual: nothing casts a shadow on the outer zone of the
    # lit side and not on the lit shoulder beyond it, while a brighter one is ballast
    # at a coupling gap beside the lit end of a car.
    d = np.linalg.norm(np.minimum(q_lit - m[:, None], 0.0) / spread[:, None], axis=0)
    return Z_THRESHOLD + np.clip(d**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0)


def _usual_contrast(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The scene's usual bed-to-shoulder contrast among log ratios ``pts`` (b, N).

    The mode nearest zero of those holding at least 5 % of the stations, and the spread
    (per band) of its members; None when no mode is that common.
    """
    radius = 0.08 * math.sqrt(pts.shape[0])
    good = []
    for m in _colour_modes(pts, np.ones(pts.shape[1], bool), radius):
        members = np.linalg.norm(pts - m[:, None], axis=0) <= radius
        if members.sum() >= 0.05 * pts.shape[1]:
            good.append((float(np.linalg.norm(m)), m, members))
    if not good:
        return None
    _, m, members = min(good, key=lambda t: t[0])
    spread = np.maximum(0.02, 1.4826 * np.median(np.abs(pts[:, members] - m[:, None]), axis=1))
    return m, spread


def _contrast_sides(
    halves: Sequence[list[np.ndarray]], ground: Sequence[list[np.ndarray]], seen: np.ndarray
) -> np.ndarray:
    """Log-ratio of "unusual" to "usual" bed-to-shoulder contrast on the better side.

    Per side, the log ratio (per band) of the bed half to the shoulder beyond it, judged
    against the scene's usual contrast (the densest mode near zero of both sides'
    ratios, as in :func:`_contrast_evidence`); the side closer to usual counts. Empty
    track in a shadow keeps the usual contrast on the side of the shadow's caster.
    """
    q = [_log_ratio(halves[i], ground[i]) for i in (0, 1)]
    nb = q[0].shape[0]
    usual = _usual_contrast(np.concatenate([q[0][:, seen], q[1][:, seen]], axis=1))
    if usual is None:
        return np.zeros(seen.shape)
    m, spread = usual
    d = np.min([np.linalg.norm((qi - m[:, None]) / spread[:, None], axis=0) for qi in q], axis=0)
    return np.clip(d**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0)


def _explain_empty(
    std: np.ndarray,
    half_std: Sequence[np.ndarray],
    shapes: np.ndarray,
    m: np.ndarray,
    members: np.ndarray,
    tmpl: np.ndarray,
    own: tuple[np.ndarray, np.ndarray],
    *,
    haze: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    shaded_side: np.ndarray | None = None,
    cloud_shade: np.ndarray | None = None,
    diffuse: np.ndarray | None = None,
    shadow: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    shade: bool = True,
) -> np.ndarray:
    """Body evidence (``Z_THRESHOLD`` + log-likelihood ratio) against one empty mode.

    Three ways empty track can look: lit (either half of the bed has the empty colour),
    shaded (a darker copy of it) and hazy (a mix of it with the colour of haze or thin
    cloud, ``haze``); the last two only where the rails still show. ``own`` is each
    station's correlation with its own empty profile over time and where it is known
    (:func:`_background_ncc`): turnouts, crossings and odd ballast look unlike the
    scene's typical empty track but like themselves on other dates, so it replaces the
    scene's correlation where higher. ``cloud_shade`` (0-1 per station, from
    :func:`_cloud_shade_weight`) makes a deep shadow over the bed that much less likely
    (:data:`CLOUD_SHADE_LLR`) where a cloud shadow was undone. ``shadow`` holds the
    scene's own shade as (offset, ratio) pairs (:func:`_shadow_ratio`, offset in noise
    units): with it, shaded empty track is the empty colour moved towards that colour of
    full shadow, at most :data:`SHADOW_DEPTH_MAX` as deep, instead of any darker copy.
    ``shade=False`` leaves out every deeper shadow than ballast's own variation (lit and
    hazy empty track only).
    """
    own_ncc, known = own
    ncc = tmpl @ shapes
    ncc = np.where(known, np.maximum(ncc, own_ncc), ncc)
    # Ballast is not uniform (dirt, oil, weeds): distances are in units of the spread
    # of the mode's own stations, never below the pixel noise.
    spread = np.maximum(1.0, 1.4826 * np.median(np.abs(std[:, members] - m[:, None]), axis=1))
    std = std / spread[:, None]
    half_std = [h / spread[:, None] for h in half_std]
    m = m / spread
    mu_e = float(np.median(ncc[members]))
    sd_e = max(0.1, 1.4826 * float(np.median(np.abs(ncc[members] - mu_e))))
    nb = std.shape[0]
    l_rail = np.clip(_gauss_ll(ncc, 0.1, 0.4) - _gauss_ll(ncc, mu_e, sd_e), -4.0, 2.0 * nb + 4.0)
    # Lit empty track: either half of the body zone has the empty colour (a neighbour's
    # shadow darkens one side only; a body covers both).
    d_half = np.min([np.linalg.norm(h - m[:, None], axis=0) for h in half_std], axis=0)
    lit = np.clip(d_half**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0)
    if diffuse is not None:
        # Under a cloud no neighbour's shadow crosses the bed: lit empty track there
        # shows its rails, and a body the colour of ballast does not.
        lit = lit + diffuse * np.maximum(l_rail, 0.0)
    # Empty track in shadow: a darker copy of the empty colour (k x, k 0.25-1) and the
    # rail pattern still there; a little less likely a priori.
    # A shadow scales the light from the ground, not the haze in front of it.
    d0 = np.zeros_like(m) if dark is None else np.minimum(dark / spread, 0.9 * m)
    md = m - d0
    if not shadow:
        k = np.clip((md @ (std - d0[:, None])) / (float(md @ md) + 1e-9), 0.2, 1.0)
        d_sh = np.linalg.norm(std - d0[:, None] - k[None] * md[:, None], axis=0)
    else:
        # The scene's own shade: from the empty colour towards full shadow (the colour
        # learned beside bodies above an offset), at most a little deeper.
        d_sh, k = np.full(std.shape[1], np.inf), np.ones(std.shape[1])
        for offset, ratio in shadow:
            off = np.minimum(offset / spread, 0.9 * m)
            w = (m - off) * (1.0 - ratio)
            x = std - m[:, None]
            t = np.clip(-(w @ x) / (float(w @ w) + 1e-9), 0.0, SHADOW_DEPTH_MAX)
            d = np.linalg.norm(x + t[None] * w[:, None], axis=0)
            k = np.where(d < d_sh, 1.0 - t * float(np.mean(1.0 - ratio)), k)
            d_sh = np.minimum(d_sh, d)
    # The rail term is not capped low: a dark, neutral body (coal, black tanks) is
    # "a darker copy of ballast" by colour and only the missing rails tell it apart.
    shade_z = np.clip(1.6 + d_sh**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0) + l_rail
    # A bed only a little darker than usual is ballast, not shadow (``deep`` 0).
    deep = np.clip((0.85 - k) / 0.2, 0.0, 1.0)
    if not shade:
        shade_z = np.where(deep > 0, np.inf, shade_z)
    if shaded_side is not None:
        # A shadow over the whole bed reaches the shoulder on the side of what casts it:
        # there bed and ground keep their usual contrast; ballast needs no caster.
        shade_z = shade_z + deep * np.maximum(shaded_side, 0.0)
    if cloud_shade is not None:
        # Under a cloud the light is diffuse: once it is corrected, a bed much darker
        # than ballast is a dark body rather than the shadow of something.
        shade_z = shade_z + CLOUD_SHADE_LLR * cloud_shade * deep
    best = np.minimum(lit, shade_z)
    if haze is not None:
        # Thin cloud adds light: the colour moves from the empty colour towards haze.
        w = haze / spread - m
        a = np.clip((w @ (std - m[:, None])) / (float(w @ w) + 1e-9), 0.0, 0.9)
        d_hz = np.linalg.norm(std - (m[:, None] + a[None] * w[:, None]), axis=0)
        hazy = np.clip(2.0 + d_hz**2 / 2 - 2.0 * nb, -2.0 * nb, 8.0) + l_rail
        best = np.minimum(best, hazy)
    return Z_THRESHOLD + best


def _background_ncc(
    shapes: np.ndarray,
    observations: Sequence[TrackObservation],
    sizes: Sequence[int],
    background: Background | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per station, correlation of its profile with its own empty profile over time.

    Returns ``(ncc, known)``, both (N,) over the concatenated stations of
    ``observations``; ``known`` is False where the archive has no empty profile (fewer
    than three dates showed the station empty, or no archive).
    """
    n_all = shapes.shape[1]
    ncc = np.zeros(n_all)
    known = np.zeros(n_all, bool)
    if background is None:
        return ncc, known
    i0 = 0
    for o, n in zip(observations, sizes, strict=True):
        shp = background.shape_for(o.track.track_id, n)
        sup = background.support.get(o.track.track_id)
        if shp is not None and sup is not None:
            known[i0 : i0 + n] = (sup >= 3) & np.isfinite(shp).all(axis=0)
            ncc[i0 : i0 + n] = (np.nan_to_num(shp) * shapes[:, i0 : i0 + n]).sum(axis=0)
        i0 += n
    return ncc, known


# --------------------------------------------------------------------------- segmentation


def _length_logpdf(priors: VehiclePriors, lengths_m: np.ndarray) -> np.ndarray:
    """Log density of a vehicle length: a mixture of the type priors and a broad floor."""
    mus = np.array(list(priors.lengths_m.values()), float)
    lo, hi = priors.min_length_m, priors.max_length_m
    g = np.exp(-0.5 * ((lengths_m[:, None] - mus[None]) / LENGTH_SD_M) ** 2) / (
        LENGTH_SD_M * math.sqrt(2 * math.pi)
    )
    dens = (1 - LENGTH_FLOOR) * g.mean(axis=1) + LENGTH_FLOOR / max(hi - lo, 1.0)
    dens = np.where((lengths_m >= lo) & (lengths_m <= hi), dens, 0.0)
    with np.errstate(divide="ignore"):
        return LENGTH_WEIGHT * np.log(dens)


def _span(priors: VehiclePriors, step: float) -> tuple[int, int]:
    return (
        max(1, int(math.floor(priors.min_length_m / step))),
        max(2, int(math.ceil(priors.max_length_m / step))),
    )


def segment_track(
    evidence: np.ndarray,
    step_m: float,
    priors: VehiclePriors,
    *,
    cut: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Best segmentation of one track into vehicles: [start, stop) station indices.

    Parameters
    ----------
    evidence : numpy.ndarray
        (n,) per-station evidence, positive for a body (``z - Z_THRESHOLD``).
    step_m : float
        Station spacing, metres.
    priors : VehiclePriors
    cut : numpy.ndarray, optional
        (n + 1,) bonus for a vehicle to start or end at each station boundary (the dip of
        a coupling gap between two bodies).

    Returns
    -------
    list of (int, int)

    Notes
    -----
    Maximises ``sum over vehicles of (step * sum of evidence + log p(length))`` over all
    segmentations into empty stations and vehicles of allowed length (exact, O(n L)).

    Examples
    --------
    Two 14 m bodies 1 m apart; the length prior may move an end by a station towards a
    common vehicle length (here both start 0.25 m early):

    >>> from railwatch.site import VehiclePriors
    >>> e = -2.0 * np.ones(200); e[20:76] = 3.0; e[80:136] = 3.0
    >>> segment_track(e, 0.25, VehiclePriors())
    [(19, 76), (79, 136)]
    """
    e = np.asarray(evidence, float)
    n = e.size
    lmin, lmax = _span(priors, step_m)
    if n < lmin:
        return []
    cs = np.concatenate([[0.0], np.cumsum(e) * step_m])
    lens = np.arange(lmin, lmax + 1)
    logp = _length_logpdf(priors, lens * step_m)
    bonus = np.zeros(n + 1) if cut is None else np.asarray(cut, float)
    best = np.zeros(n + 1)
    back = np.zeros(n + 1, dtype=np.int64)  # 0: empty station, else vehicle length
    # A vehicle ending at i starts at i - l <= i - lmin, so within a block of lmin
    # stations every vehicle candidate depends on scores already final: score the whole
    # block at once, then the "empty station" choice is a running maximum.
    for k in range(1, n + 1, lmin):
        idx = np.arange(k, min(k + lmin, n + 1))
        start = idx[:, None] - lens[None, :]  # (b, L)
        ok = start >= 0
        st = np.where(ok, start, 0)
        cand = best[st] + (cs[idx][:, None] - cs[st]) + logp[None, :] + bonus[st]
        cand = np.where(ok, cand + bonus[idx][:, None], -np.inf)
        j = np.argmax(cand, axis=1)
        veh = cand[np.arange(idx.size), j]
        run = np.maximum.accumulate(np.maximum(veh, best[k - 1]))
        prev = np.concatenate([[best[k - 1]], run[:-1]])
        take = veh > prev
        best[idx] = run
        back[idx] = np.where(take, lens[j], 0)
    segs = []
    i = n
    while i > 0:
        if back[i]:
            segs.append((i - int(back[i]), i))
            i -= int(back[i])
        else:
            i -= 1
    return segs[::-1]


def _count_block(
    f: np.ndarray, cs: np.ndarray, lens: np.ndarray, logp: np.ndarray, i0: int, i1: int
) -> None:
    """Rows ``i0:i1`` of the forward recursion of :func:`count_distribution`, in place.

    Needs ``i1 - i0 <= lens[0]`` (every row used is before ``i0``), ``i0 >= lens[-1]``
    and at least two reachable counts; the operations are those of the row loop, per
    element in the same order (the carry is a ``logaddexp`` accumulation).
    """
    rows = np.arange(i0, i1)
    src = rows[:, None] - lens[None, :]  # (B, L)
    gain = (cs[rows][:, None] - cs[src]) + logp[None, :]
    prev = f[src, :-1] + gain[:, :, None]  # (B, L, K)
    mx = prev.max(axis=1)
    fin = np.isfinite(mx)
    with np.errstate(invalid="ignore"):
        # Summed along a contiguous axis, as NumPy sums the row loop's masked copy.
        ex = np.ascontiguousarray(np.exp(prev - mx[:, None, :]).transpose(0, 2, 1))
        total = ex.sum(axis=2)
        lse = np.where(fin, mx + np.log(total), -np.inf)
    f[i0:i1, 0] = f[i0 - 1, 0]
    f[i0:i1, 1:] = np.logaddexp.accumulate(np.vstack([f[i0 - 1, 1:][None], lse]), axis=0)[1:]


def count_distribution(
    evidence: np.ndarray,
    step_m: float,
    priors: VehiclePriors,
    *,
    temperature: float = TEMPERATURE,
    max_count: int | None = None,
) -> np.ndarray:
    """Posterior of the number of vehicles on a stretch of track.

    Parameters
    ----------
    evidence : numpy.ndarray
        (n,) per-station evidence as for :func:`segment_track`.
    step_m : float
    priors : VehiclePriors
    temperature : float
        Divides the segmentation score (stations are correlated, see :data:`TEMPERATURE`).
    max_count : int, optional
        Largest count considered (default: what fits at the shortest length).

    Returns
    -------
    numpy.ndarray
        ``p[k]``, probability of ``k`` vehicles.

    Notes
    -----
    The forward recursion of :func:`segment_track` with log-sum-exp instead of max,
    carrying the number of vehicles: the sum over all segmentations, each weighted by
    ``exp(score / temperature)``.
    """
    e = np.asarray(evidence, float)
    n = e.size
    lmin, lmax = _span(priors, step_m)
    kmax = max_count if max_count is not None else n // max(lmin, 1) + 1
    if n < lmin or kmax == 0:
        return np.array([1.0])
    cs = np.concatenate([[0.0], np.cumsum(e) * step_m]) / temperature
    lens = np.arange(lmin, lmax + 1)
    logp = _length_logpdf(priors, lens * step_m) / temperature
    f = np.full((n + 1, kmax + 1), -np.inf)
    f[0, 0] = 0.0
    # Row by row until every length fits and two counts are reachable; then blocks of
    # ``lmin`` rows at once (:func:`_count_block`), the same arithmetic.
    start = n + 1 if kmax < 2 else min(n + 1, max(int(lens[-1]), 2 * int(lens[0])))
    for i in range(1, start):
        row = f[i - 1].copy()
        ok = lens <= i
        if ok.any():
            ls = lens[ok]
            gain = (cs[i] - cs[i - ls]) + logp[ok]  # (L,)
            prev = f[i - ls, :-1] + gain[:, None]  # (L, kmax)
            mx = prev.max(axis=0)
            fin = np.isfinite(mx)
            lse = np.full_like(mx, -np.inf)
            lse[fin] = mx[fin] + np.log(np.exp(prev[:, fin] - mx[fin]).sum(axis=0))
            row[1:] = np.logaddexp(row[1:], lse)
        f[i] = row
    for i0 in range(start, n + 1, int(lens[0])):
        _count_block(f, cs, lens, logp, i0, min(i0 + int(lens[0]), n + 1))
    last = f[n]
    top = last.max()
    p = np.exp(last - top)
    return p / p.sum()


# --------------------------------------------------------------------------- vehicles


def _window_mean(x: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``mean(a, b)``: (bands, k) means of ``x`` (bands, n) over stations ``[a, b)``.

    Bounds are clipped to the track; from one cumulative sum, for any number of windows.
    """
    n = x.shape[1]
    cs = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)

    def mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.clip(a, 0, n), np.clip(b, 0, n)
        return (cs[:, b] - cs[:, a]) / np.maximum(b - a, 1)

    return mean


def _break_size(colour: np.ndarray, step: float) -> np.ndarray:
    """(n + 1,) how far the colour breaks at each station boundary (see :func:`_gap_evidence`).

    ``colour`` is (bands, n), unsmoothed, in noise units. In a coupling gap the strip
    shows ballast or shadow, unlike the bodies on either side; where two bodies touch,
    the colour changes from one to the other. Bodies are judged 1-4 m away on each side.
    """
    near = max(1, int(round(0.75 / step)))
    far = max(near + 2, int(round(4.0 / step)))
    idx = np.arange(colour.shape[1] + 1)
    mean = _window_mean(colour)
    left = mean(idx - far, idx - near)
    right = mean(idx + near, idx + far)
    here = mean(idx - 1, idx + 1)
    dev = np.minimum(np.linalg.norm(here - left, axis=0), np.linalg.norm(here - right, axis=0))
    change = 0.5 * np.linalg.norm(left - right, axis=0)
    return np.maximum(dev, change)


def _gap_bonus(breaks: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Bonus per station boundary from its colour break (:func:`_break_size`)."""
    return weight * np.minimum(breaks, 8.0) ** 2 / 2


def _gap_evidence(colour: np.ndarray, step: float, weight: float = 0.5) -> np.ndarray:
    """Bonus per station boundary for a gap between two vehicles.

    ``colour`` is (bands, n), unsmoothed, in noise units. In a coupling gap the strip
    shows ballast or shadow, unlike the bodies on either side; where two bodies touch,
    the colour changes from one to the other. Bodies are judged 1-4 m away on each side
    (:func:`_break_size`).
    """
    return _gap_bonus(_break_size(colour, step), weight)


def _boundary_mean(x: np.ndarray) -> np.ndarray:
    """(bands, n + 1) mean of the stations either side of each station boundary."""
    idx = np.arange(x.shape[1] + 1)
    return _window_mean(x)(idx - 1, idx + 1)


def _width_gap_evidence(
    body: np.ndarray,
    core: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray],
    step: float,
    *,
    resolved: bool = True,
) -> np.ndarray:
    """Gap evidence per station boundary (:func:`_gap_evidence`) across the body's width.

    A coupling gap crosses the bodies' whole width: ballast or shadow shows in the middle
    of the bed and beside the rails alike. Fans and exhausts on a locomotive's roof, a
    tank car's dome or a hopper's hatches darken only the middle of a roof, and the body
    zone's mean colour dips there as at a gap. Where the middle (``core``, inside the
    rails) is darker than both edges (beyond the rails) by more than
    :data:`Z_THRESHOLD` noise units, and within the 4 m the gap evidence compares
    either side, the edges must show the gap too; elsewhere (a gap shows the middle no
    darker than its edges; a dark tank barrel's sides are as dark as its gap) the body
    zone's evidence stands.

    Parameters
    ----------
    body, core : numpy.ndarray
        (bands, n) body-zone and middle colours per station, in noise units.
    edges : (numpy.ndarray, numpy.ndarray)
        (bands, n) colours of the bands along the left and right edge, noise units.
    step : float
        Station spacing, metres.
    resolved : bool
        Whether the scene resolves the grid pixel (:func:`_fine_detail`); only then
        are the edges seen apart from the middle, and an edge's break smaller than
        :data:`GAP_EDGE_SHARE` of the middle's is put down to the blur of a roof patch.

    Returns
    -------
    numpy.ndarray
        (n + 1,) bonus per station boundary.
    """
    cut = _gap_evidence(body, step)
    mid = _boundary_mean(core).mean(axis=0)
    rim = np.minimum(*(_boundary_mean(e).mean(axis=0) for e in edges))
    roof = rim - mid > Z_THRESHOLD
    if not roof.any():
        return cut
    # The gap evidence compares bodies up to 4 m either side of a boundary: near such a
    # patch the colour change it sees is the patch's own.
    reach = max(1, int(round(4.0 / step)))
    roof = ndi.maximum_filter1d(roof.astype(np.uint8), 2 * reach + 1).astype(bool)
    # The edges pick up some of the patch through the blur of the pixels: an edge's
    # break smaller than GAP_EDGE_SHARE of the middle's is the patch's, not a gap's.
    # (Where the scene is resampled from coarser pixels, the edges and the middle are
    # the same pixels and the shares tell nothing.)
    mid_break = GAP_EDGE_SHARE * _break_size(core, step) if resolved else 0.0
    breaks = [_break_size(e, step) for e in edges]
    both = np.minimum(*(np.where(b >= mid_break, _gap_bonus(b), 0.0) for b in breaks))
    return np.where(roof, np.minimum(cut, both), cut)


def _cut_bonus(z: np.ndarray, step: float, weight: float = 1.0) -> np.ndarray:
    """Bonus per station boundary for a coupling gap, in evidence units.

    How far the evidence dips at the boundary below the bodies on both sides (within
    3 m): ballast showing between two bodies.
    """
    w = max(2, int(round(3.0 / step)))
    zz = np.concatenate([z[:1], z])  # boundary i sits before station i
    left = ndi.maximum_filter1d(zz, size=w, origin=(w - 1) // 2, mode="nearest")
    right = ndi.maximum_filter1d(zz, size=w, origin=-(w // 2), mode="nearest")
    low = ndi.minimum_filter1d(zz, size=3, mode="nearest")
    dip = np.clip(np.minimum(left, right) - low, 0.0, 6.0)
    return weight * dip


def _body_shape(offsets_m: np.ndarray, profile: np.ndarray) -> tuple[float, float]:
    """How hollow and how ridged a body's across-track brightness profile is.

    Parameters
    ----------
    offsets_m : numpy.ndarray
        (m,) offsets of the profile from the centre line.
    profile : numpy.ndarray
        (m,) gray value across the strip, averaged along the vehicle.

    Returns
    -------
    (hollow, ridge)
        In units of the profile's own spread (so independent of exposure and colour):
        ``hollow`` = the brightest rim (1.0-1.75 m out) above the centre (an open top:
        lit walls around a dark load or floor), ``ridge`` = the brightest centre point
        above the body's median (a barrel's highlight along the top). NaN when the
        profile is not seen.
    """
    o = np.abs(offsets_m)
    rim_px = profile[(o >= 1.0) & (o <= 1.75)]
    centre = profile[o <= 0.75]
    body = profile[o <= 1.6]
    if not (np.isfinite(rim_px).sum() >= 2 and np.isfinite(centre).any()):
        return math.nan, math.nan
    scale = float(np.nanstd(profile)) + SHAPE_SD_FLOOR
    rim = float(np.mean(np.sort(rim_px[np.isfinite(rim_px)])[-2:]))
    hollow = (rim - float(np.nanmean(centre))) / scale
    ridge = (float(np.nanmax(centre)) - float(np.nanmedian(body))) / scale
    return hollow, ridge


def _classify(
    length_m: float,
    colour: np.ndarray,
    priors: VehiclePriors,
    shape: tuple[float, float] = (math.nan, math.nan),
) -> tuple[str, float]:
    """Vehicle type from its length and body shape -> (type, fit).

    Length is the cue at any resolution, but measured lengths scatter by about a metre
    while several types differ by less. Where the body is resolved its shape adds two
    physical cues (:func:`_body_shape`): a barrel's bright ridge along the top (tank) and
    an open top's lit walls around a darker load (open). Each adds at most
    :data:`SHAPE_WEIGHT` log-likelihood to its type, or takes it away.
    """
    names = [t for t in priors.lengths_m if t in VEHICLE_TYPES]
    if not names:
        return "unknown", 0.0
    mus = np.array([priors.lengths_m[t] for t in names])
    ll = -0.5 * ((length_m - mus) / LENGTH_SD_M) ** 2
    hollow, ridge = shape
    for name, cue, (lo, hi) in (("open", hollow, HOLLOW_CUE), ("tank", ridge, RIDGE_CUE)):
        if name in names and math.isfinite(cue):
            # -1 below lo (clearly absent), +1 above hi (clear), linear between.
            sure = float(np.clip((2 * cue - lo - hi) / (hi - lo), -1.0, 1.0))
            ll[names.index(name)] += SHAPE_WEIGHT * sure
    p = np.exp(ll - ll.max())
    p /= p.sum()
    k = int(np.argmax(p))
    if abs(length_m - mus[k]) > 2.5 * LENGTH_SD_M:
        return "unknown", float(p[k])
    return names[k], float(p[k])


def _vehicle_polygon(line, s0: float, s1: float, width_m: float) -> Polygon:
    piece = substring(line, max(0.0, s0), min(line.length, s1))
    if piece.geom_type != "LineString" or piece.length == 0:
        piece = substring(line, max(0.0, s0 - 0.5), min(line.length, s1 + 0.5))
    return piece.buffer(width_m / 2, cap_style="flat")


def _track_vehicles(
    obs: TrackObservation,
    ev: StationEvidence,
    site: Site,
    coarse: bool,
    static: np.ndarray | None = None,
) -> tuple[list[Vehicle], list[np.ndarray]]:
    priors = site.vehicles
    step = obs.frame.step_m
    if static is not None and static.shape == ev.observed.shape:
        # Under a roof or a structure that never changes the track cannot be seen.
        ev = StationEvidence(ev.z, ev.observed & ~static, ev.colour, ev.shape, ev.cut)
    # Unobserved stations are mildly against a body, so vehicles are not invented in
    # nodata, yet one cut by a swath edge can still be completed from its seen part.
    e = np.where(ev.observed, ev.z - Z_THRESHOLD, -0.5)
    # A short run of body evidence beyond the end of a complete body, across an empty
    # gap, is no part of it: it does not lengthen the body (nor split it in two).
    stray = _fragments(ev.z, ev.observed, step, priors.gap_m, priors.min_length_m)
    e = np.where(stray, np.minimum(e, 0.0), e)
    cut = (ev.cut if ev.cut is not None else 0.0) + _cut_bonus(ev.z, step)
    # No gap evidence where nothing is seen on either side of a boundary.
    seen_b = np.concatenate([[False], ev.observed]) | np.concatenate([ev.observed, [False]])
    segs = segment_track(e, step, priors, cut=np.where(seen_b, cut, 0.0))
    s_start = obs.frame.s_m[0] - step / 2
    vehicles = []
    trim = max(1, int(round(1.0 / step)))
    gidx = gray_bands(obs.bands)
    for a, b in segs:
        # The coupling gap between two bodies belongs to neither: drop weak end stations.
        for _ in range(trim):
            if b - a > 2 * trim and ev.observed[a] and ev.z[a] < Z_THRESHOLD:
                a += 1
            if b - a > 2 * trim and ev.observed[b - 1] and ev.z[b - 1] < Z_THRESHOLD:
                b -= 1
        length = (b - a) * step
        share = float(ev.observed[a:b].mean())
        if share == 0:
            continue
        zin = ev.z[a:b][ev.observed[a:b]]
        strength = float(np.median(zin)) if zin.size else 0.0
        conf = 1.0 / (1.0 + math.exp(-(strength - Z_THRESHOLD) * 1.5))
        if coarse:
            vtype, fit = "unknown", 0.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                profile = np.nanmean(np.nanmean(obs.values[gidx, :, a:b], axis=0), axis=1)
            vtype, fit = _classify(
                length,
                ev.colour[:, a:b].mean(axis=1),
                priors,
                _body_shape(obs.frame.offsets_m, profile),
            )
        poly = _vehicle_polygon(
            obs.track.line, s_start + a * step, s_start + b * step, priors.width_m
        )
        # Trimmed below the shortest vehicle: a fragment (car end, shadow), not a car.
        long_enough = length >= priors.min_length_m
        counted = conf >= site.detection.min_confidence and share > 0.5 and long_enough
        vehicles.append(
            Vehicle(
                obs.track.track_id,
                poly,
                round(float(length), 2),
                vtype,
                round(float(conf), 3),
                round(share, 3),
                bool(counted),
            )
        )
    dists = _track_count_dists(e, ev.observed, segs, step, priors)
    return vehicles, dists


def _fragments(
    z: np.ndarray, observed: np.ndarray, step_m: float, gap_m: float, length_m: float
) -> np.ndarray:
    """(n,) stations of a stray run of body evidence at the end of a complete body.

    A run (observed, ``z >= Z_THRESHOLD``) shorter than :data:`FRAGMENT_M` is stray when
    on one side an empty gap of at least ``gap_m`` (the visible gap between two coupled
    bodies) parts it from a run of at least ``length_m`` (the shortest vehicle: a body
    complete without it), and on the other side at least ``length_m`` of observed track
    shows no body (no vehicle it could be a part of). No body has an empty gap inside, so
    the run does not lengthen the one beside it (a shadow strip across the track, a patch
    of dirt on snow, whose colour the snow's small spread sets far apart).
    """
    body = observed & (z >= Z_THRESHOLD)
    lab, n = ndi.label(body)
    if n < 2:
        return np.zeros(z.shape, bool)
    idx = np.arange(z.size)
    size = np.bincount(lab, minlength=n + 1)[1:] * step_m
    first = ndi.minimum(idx, lab, np.arange(1, n + 1)).astype(int)
    last = ndi.maximum(idx, lab, np.arange(1, n + 1)).astype(int)
    # Observed empty length before each run (to the previous run or the track's start).
    seen = np.concatenate([[0], np.cumsum(observed)])
    prev_end = np.concatenate([[-1], last[:-1]])
    next_start = np.concatenate([first[1:], [z.size]])
    empty_before = (seen[first] - seen[prev_end + 1]) * step_m
    empty_after = (seen[next_start] - seen[last + 1]) * step_m
    gap_before = (first - prev_end - 1) * step_m
    gap_after = (next_start - last - 1) * step_m
    size_before = np.concatenate([[0.0], size[:-1]])
    size_after = np.concatenate([size[1:], [0.0]])
    stray = (size < FRAGMENT_M) & (
        (empty_before >= length_m) & (gap_after >= gap_m) & (size_after >= length_m)
        | (empty_after >= length_m) & (gap_before >= gap_m) & (size_before >= length_m)
    )
    return np.concatenate([[False], stray])[lab]


def _track_count_dists(
    e: np.ndarray,
    observed: np.ndarray,
    segs: Sequence[tuple[int, int]],
    step: float,
    priors: VehiclePriors,
) -> list[np.ndarray]:
    """Count posteriors of the stretches of a track around its detected vehicles.

    Vehicles closer than a maximum length are one stretch; each stretch is padded by a
    vehicle length either side, so a vehicle the best segmentation missed still has a
    chance. Stretches far from any detection carry little mass above zero and are skipped.
    """
    lmin, lmax = _span(priors, step)
    pad = lmax
    groups: list[list[int]] = []
    for a, b in segs:
        if groups and a - groups[-1][1] <= lmax:
            groups[-1][1] = b
        else:
            groups.append([a, b])
    out = []
    n = e.size
    for a, b in groups:
        lo, hi = max(0, a - pad), min(n, b + pad)
        # Coarse steps keep the recursion cheap; the evidence is smooth at that scale.
        k = max(1, int(round(0.5 / step)))
        m = (hi - lo) // k * k
        if m < k:
            continue
        ee = e[lo : lo + m].reshape(-1, k).mean(axis=1)
        oo = observed[lo : lo + m].reshape(-1, k).mean(axis=1)
        p = count_distribution(ee, step * k, priors)
        del oo
        out.append(p)
    return out


def _interval(dists: Sequence[np.ndarray], railcars: int, coverage: float = 0.9) -> tuple[int, int]:
    """Central interval of the total count: convolution of the per-stretch posteriors."""
    total = np.array([1.0])
    for d in dists:
        total = np.convolve(total, d)
    cdf = np.cumsum(total)
    tail = (1.0 - coverage) / 2
    low = int(np.searchsorted(cdf, tail))
    high = int(np.searchsorted(cdf, 1.0 - tail))
    return min(low, railcars), max(high, railcars)


def _structure_today(
    background: Background | None,
    obs: TrackObservation,
    ev: StationEvidence,
    static: np.ndarray | None,
) -> np.ndarray | None:
    """Add to ``static`` the stations a structure beside the track covers on this date.

    Beside a structure (:attr:`Background.structure`) a station is not observable
    unless it looks occupied in a colour other than the structure's
    (:func:`_same_colour`): that is a railcar and stays observed. So does a station
    beside a building (:attr:`Background.structure_side`) in a rake of coupled bodies
    (gaps under :data:`RAKE_GAP_M`) that runs on past the building's part by more than
    :data:`STRUCTURE_GAP_M` at both ends (:func:`_rake_past`): dark or grey railcars
    share a shaded wall's colour, but no wall or shadow reaches beyond the building.
    """
    colour = None if background is None else background.structure.get(obs.track.track_id)
    if colour is None or colour.shape[1] != ev.z.shape[0]:
        return static
    chroma = _body_chroma(obs, ev)
    other = np.isfinite(chroma[0]) & ~_same_colour(chroma, colour)
    cover = np.isfinite(colour[0]) & ~other
    # Colour alone does not part a dark or grey railcar from a wall or a shadow: a rake
    # standing at a building and running on past it is railcars, whatever their paint.
    # Not so at a turnout, where what leans over the track is another track's railcars
    # (no building side there, :func:`_converging`): those stay covered.
    side = None if background is None else background.structure_side.get(obs.track.track_id)
    if side is not None and side.shape == cover.shape and np.any(side):
        building = side != 0
        occupied = ev.observed & (ev.z > Z_THRESHOLD)
        step = obs.frame.step_m
        reach = max(1, int(round(STRUCTURE_GAP_M / step)))
        coupled = max(1, int(round(RAKE_GAP_M / step)))
        rake = _rake_past(
            occupied, cover & occupied & building, reach, close=coupled, both_ends=True
        )
        cover &= ~(rake & building)
    return cover if static is None or static.shape != cover.shape else static | cover


def _rake_past(
    occupied: np.ndarray,
    part: np.ndarray,
    gap: int,
    *,
    close: int | None = None,
    both_ends: bool = False,
) -> np.ndarray:
    """(n,) stations of the occupied stretches that run on past ``part`` by more than ``gap``.

    A building's wall, roof or shadow reaches no further along the track than the
    building (:data:`STRUCTURE_GAP_M` beyond its ends at most): a stretch of occupied
    track that goes on past the building's part (``part``, occupied stations taken for
    the building) by more than ``gap`` stations at either end (``both_ends``: at both)
    is a rake standing at the building. A stretch closes gaps shorter than ``close``
    stations (default ``gap``). A wall may continue a rake that stops at the building
    with no gap between them; only a rake running past at both ends spans it whole.

    Examples
    --------
    >>> occ = np.array([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0], bool)
    >>> part = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0], bool)
    >>> _rake_past(occ, part, 2).astype(int)
    array([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    >>> _rake_past(occ, part, 2, close=4).astype(int)
    array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    >>> _rake_past(occ, part, 2, close=4, both_ends=True).astype(int)
    array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    """
    size = gap if close is None else close
    stretches, _ = ndi.label(ndi.binary_closing(occupied, np.ones(size, bool)) | occupied)
    rake = np.zeros(occupied.shape, bool)
    for k in np.unique(stretches[part & (stretches > 0)]):
        idx = np.flatnonzero(stretches == k)
        on = np.flatnonzero(part & (stretches == k))
        before, after = on[0] - idx[0] > gap, idx[-1] - on[-1] > gap
        if (before and after) if both_ends else (before or after):
            rake[idx] = True
    return rake


def _ambiguous_length_m(ev: StationEvidence, step_m: float, static: np.ndarray | None) -> float:
    """Observed track length (m) whose evidence is inconclusive.

    A station is inconclusive when its evidence is within :data:`AMBIGUOUS_Z` of the
    threshold (body and empty track about equally likely) or marked ``unsure`` (empty
    only as deep shade where the rails are not resolved). Stations under a static
    structure are left out, as in the count.
    """
    amb = ev.observed & (np.abs(ev.z - Z_THRESHOLD) < AMBIGUOUS_Z)
    if ev.unsure is not None:
        amb |= ev.observed & ev.unsure
    if static is not None and static.shape == amb.shape:
        amb &= ~static
    return float(amb.sum()) * step_m


def widen_interval(
    railcars: int,
    low: int,
    high: int,
    quality: Quality,
    *,
    vehicles: Sequence[Vehicle] = (),
    ambiguous: float = 0.0,
    history: bool = True,
) -> tuple[int, int]:
    """Widen the segmentation interval by the other sources of count error.

    Parameters
    ----------
    railcars : int
        Counted vehicles.
    low, high : int
        Central 90 % of the segmentation posterior (how runs split into vehicles).
    quality : Quality
    vehicles : sequence of Vehicle, optional
        All detections of the scene, counted or not (per-vehicle ambiguity).
    ambiguous : float, optional
        Observed track with inconclusive evidence, in mean vehicle lengths.
    history : bool, optional
        Whether an empty-track appearance learned over an archive was used; without one
        the relative spread is at least :data:`NO_HISTORY_REL_SD`.

    Returns
    -------
    (int, int)

    Notes
    -----
    Independent sources of error, added as variances around ``railcars``:

    * how occupied runs split into vehicles: the spread of the segmentation posterior
      (its 90 % half width / :data:`INTERVAL_Z`);
    * each detection on its own: a counted vehicle is real with probability
      ``confidence``, an uncounted one (weak or mostly unobserved) with probability
      ``confidence x observed_share``; the count is off by a sum of such Bernoulli
      variables, variance ``sum p (1 - p)``;
    * what no single vehicle shows: whole stretches read wrongly. A relative spread
      (:data:`SCENE_REL_SD`, larger with snow, cloud or haze over the tracks; at least
      :data:`NO_HISTORY_REL_SD` without an archive's history) plus
      :data:`SCENE_ADD_SD` vehicles;
    * what the scene itself says about its difficulty: ``ambiguous`` vehicle lengths
      of observed track whose evidence was inconclusive (within :data:`AMBIGUOUS_Z` of
      the threshold), each a coin flip of one vehicle, taken together
      (:data:`AMBIGUOUS_SD` per length). Clear scenes have almost none; shade, haze,
      snow or a coarse pixel make many.

    The bounds are ``railcars -/+ INTERVAL_Z x sd``. A ``partial`` scene counts what
    was seen but the yard may hold more where it was not: the high bound is scaled to
    the whole track length at the seen density.
    """
    hard = quality.snow > 0.2 or quality.cloud > 0.02
    rel = SCENE_REL_SD[1] if hard else SCENE_REL_SD[0]
    if not history:
        rel = max(rel, NO_HISTORY_REL_SD)
    var = ((high - low) / (2 * INTERVAL_Z)) ** 2
    for v in vehicles:
        p = v.confidence if v.counted else v.confidence * v.observed_share
        var += p * (1.0 - p)
    var += (rel * railcars) ** 2 + SCENE_ADD_SD**2
    # Inconclusive track: each vehicle length of it holds a vehicle or not, a coin flip,
    # and the flips go together (one look misread is misread along the whole yard).
    var += (AMBIGUOUS_SD * ambiguous) ** 2
    sd = math.sqrt(var)
    seen = max(quality.coverage * (1.0 - quality.cloud), 0.2)
    lo = max(0, int(math.floor(railcars - INTERVAL_Z * sd)))
    hi = int(math.ceil((railcars + INTERVAL_Z * sd) / seen))
    return min(low, lo), max(high, hi, railcars)


def _fine_detail(data: np.ndarray, valid: np.ndarray, every: int = 4) -> float:
    """Energy of the finest detail relative to detail twice as coarse (see FINE_DETAIL_MIN).

    Mean square of the second difference at one pixel over that at two pixels, of the
    band mean, along rows and columns (every ``every``-th line), over valid pixels; 1.0
    (resolved) with too few.
    """
    ratios = []
    for axis in (0, 1):
        lines = (
            (slice(None), slice(None, None, every)) if axis == 0 else (slice(None, None, every),)
        )
        x = np.moveaxis(np.nan_to_num(data[(slice(None), *lines)]).mean(axis=0), axis, 0)
        v = np.moveaxis(np.asarray(valid, bool)[lines], axis, 0)
        ok = v[:-4] & v[1:-3] & v[2:-2] & v[3:-1] & v[4:]
        if ok.sum() < 100:
            return 1.0
        fine = (x[1:-3] - 2 * x[2:-2] + x[3:-1])[ok].astype(np.float64)
        wide = (x[:-4] - 2 * x[2:-2] + x[4:])[ok].astype(np.float64)
        ratios.append(float(np.mean(fine**2)) / max(float(np.mean(wide**2)), 1e-12))
    return float(np.mean(ratios))


def _vehicle_strengths(
    vehicles: Sequence[Vehicle],
    observations: Sequence[TrackObservation],
    evidence: Sequence[StationEvidence],
) -> np.ndarray:
    """(n,) mean body evidence (``z - Z_THRESHOLD``) over each vehicle's observed stations.

    A body seen from its own track covers the bed from rail to rail over its whole
    length; seen from a converging track it covers part of the bed, and less of it the
    further the tracks part, so its evidence there is weaker.
    """
    by_track = {o.track.track_id: (o, ev) for o, ev in zip(observations, evidence, strict=True)}
    out = np.zeros(len(vehicles))
    for i, v in enumerate(vehicles):
        o, ev = by_track[v.track_id]
        s_mid = o.track.line.project(v.polygon.centroid)
        inside = np.abs(o.frame.s_m - s_mid) <= v.length_m / 2
        use = inside & ev.observed
        if use.any():
            out[i] = float(np.mean(ev.z[use] - Z_THRESHOLD))
    return out


def _one_body_each(vehicles: Sequence[Vehicle], strength: np.ndarray) -> list[Vehicle]:
    """Count a body seen from two converging tracks once.

    Where two centre lines come within a body's width of each other (a turnout, a
    ladder meeting its yard tracks, a spur leaving a track) both strips cover the same
    rails, and a car on one is found on both. Bodies cannot interpenetrate: of two
    counted vehicles on different tracks whose footprints overlap by more than
    :data:`BODY_OVERLAP_SHARE` of the smaller, only the one with the stronger evidence
    (``strength``, :func:`_vehicle_strengths`) is counted; the other is kept, uncounted.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> a = Vehicle("T8", box(0, 0, 14, 3.2), 14.0, "open", 1.0)
    >>> b = Vehicle("S1", box(1, 0.5, 15, 3.7), 14.0, "open", 1.0)
    >>> c = Vehicle("T7", box(0, 5.3, 14, 8.5), 14.0, "open", 1.0)
    >>> [v.counted for v in _one_body_each([a, b, c], np.array([3.0, 2.0, 3.0]))]
    [True, False, True]
    """
    out = list(vehicles)
    idx = [i for i, v in enumerate(out) if v.counted]
    if len(idx) < 2:
        return out
    polys = [out[i].polygon for i in idx]
    tree = STRtree(polys)
    kept: set[int] = set()
    # Strongest first; ties keep the given order (stable sort).
    for k in sorted(range(len(idx)), key=lambda k: -strength[idx[k]]):
        v = out[idx[k]]
        clash = False
        for j in tree.query(polys[k]):
            if int(j) not in kept or out[idx[int(j)]].track_id == v.track_id:
                continue
            other = polys[int(j)]
            small = min(polys[k].area, other.area)
            if small > 0 and polys[k].intersection(other).area > BODY_OVERLAP_SHARE * small:
                clash = True
                break
        if clash:
            out[idx[k]] = replace(v, counted=False)
            logger.debug(
                "%s vehicle at %s: a body of another track", v.track_id, v.polygon.centroid
            )
        else:
            kept.add(k)
    return out


def _unobserved(observations: Sequence[TrackObservation], width_m: float) -> BaseGeometry:
    parts = []
    for o in observations:
        miss = o.inside & ~(o.valid & ~o.cloud)
        step = o.frame.step_m
        s0 = o.frame.s_m[0] - step / 2
        for a, b in _runs(miss):
            parts.append(_vehicle_polygon(o.track.line, s0 + a * step, s0 + b * step, width_m))
    if not parts:
        return Polygon()
    return union_all(parts)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist(), strict=True))


def analyse_scene(
    data: np.ndarray,
    bands: tuple[str, ...],
    valid: np.ndarray,
    grid: SiteGrid,
    tracks: Sequence[Track],
    aoi: BaseGeometry,
    site: Site,
    *,
    background: Background | None = None,
    unsearched: BaseGeometry | None = None,
    sun_azimuth_deg: float | None = None,
    sun_elevation_deg: float | None = None,
) -> SceneAnalysis:
    """Detect, classify and count the rail vehicles of one aligned acquisition.

    Parameters
    ----------
    data : numpy.ndarray
        (bands, H, W) float32 scaled about 0-1 on ``grid`` (aligned to the reference).
    bands : tuple of str
    valid : numpy.ndarray
        (H, W) bool.
    grid : SiteGrid
    tracks : sequence of Track
        Centre lines in the grid CRS.
    aoi : shapely geometry
        AOI in the grid CRS.
    site : Site
        Vehicle priors, detection and quality settings.
    background : Background, optional
        Empty-track model from :func:`learn_background`; without it the scene is judged
        on its own.
    unsearched : shapely geometry, optional
        Part of the AOI (grid CRS) where no track could be found: extracted tracks, and
        no image of the stack covered it. It lowers the coverage (by its share of the
        AOI's area) and is reported as unobserved.
    sun_azimuth_deg, sun_elevation_deg : float, optional
        The sun at acquisition (azimuth clockwise from north, elevation above the
        horizon, e.g. :func:`railwatch.sun.sun_position`), when the time of day is
        known: the side the shadows fall to then follows from it. Without, it is learned
        from the scene.

    Returns
    -------
    SceneAnalysis

    Notes
    -----
    ``railcars`` counts vehicles with confidence >= ``site.detection.min_confidence``
    of which more than half was observed, a body seen from two converging tracks once
    (:func:`_one_body_each`). ``obscured`` and ``no_coverage`` scenes report
    None, never 0; ``partial`` scenes count the observed part only. Without any track
    the AOI itself is assessed and an observable yard counts 0.

    The interval is the central 90 % of the count posterior (:func:`count_distribution`
    per stretch of track, convolved over stretches), always containing ``railcars``.
    """
    if not tracks:
        q = assess(data, bands, valid, grid, [], aoi, site.quality)
        n = None if q.status in ("obscured", "no_coverage") else 0
        return SceneAnalysis((), q, n, n, n, {t: 0 for t in VEHICLE_TYPES}, Polygon())
    obs = observe_tracks(data, bands, valid, grid, tracks, aoi, background=background)
    unseen = Polygon() if unsearched is None else unsearched.intersection(aoi)
    share = float(unseen.area / aoi.area) if aoi.area > 0 else 0.0
    quality = quality_from_observations(obs, site.quality, unsearched_share=share)
    unobserved = _unobserved(obs, site.vehicles.width_m)
    if share > 0:
        unobserved = union_all([unobserved, unseen])
    if quality.status in ("obscured", "no_coverage") or not obs:
        return SceneAnalysis(
            (), quality, None, None, None, {t: 0 for t in VEHICLE_TYPES}, unobserved
        )
    coarse = grid.resolution_m >= COARSE_GSD_M
    resolved = _fine_detail(data, valid) >= FINE_DETAIL_MIN
    sun = None
    if sun_azimuth_deg is not None and sun_elevation_deg is not None:
        sun = (float(sun_azimuth_deg), float(sun_elevation_deg))
    # A thin cloud's rim is not seen: nothing under it is counted. The scene's light and
    # empty-track statistics are still judged over it as over any observed track (the
    # light correction and the empty-track levels were set with it, and taking a rim
    # out moves the full-sun level under the rest of the yard).
    rims = [o.thin for o in obs]
    judged = [
        o if r is None else replace(o, cloud=o.cloud & ~r) for o, r in zip(obs, rims, strict=True)
    ]
    evidence = station_evidence(judged, background=background, resolved=resolved, sun=sun)
    evidence = [
        ev if r is None else replace(ev, observed=ev.observed & ~r)
        for ev, r in zip(evidence, rims, strict=True)
    ]
    vehicles: list[Vehicle] = []
    dists: list[np.ndarray] = []
    unclear_m = 0.0
    for o, ev in zip(obs, evidence, strict=True):
        static = None if background is None else background.static.get(o.track.track_id)
        static = _structure_today(background, o, ev, static)
        static = _structure_lean(background, o, ev, static)
        v, d = _track_vehicles(o, ev, site, coarse, static)
        vehicles.extend(v)
        dists.extend(d)
        unclear_m += _ambiguous_length_m(ev, o.frame.step_m, static)
    vehicles = _one_body_each(vehicles, _vehicle_strengths(vehicles, obs, evidence))
    counted = [v for v in vehicles if v.counted]
    railcars = len(counted)
    low, high = _interval(dists, railcars)
    low, high = widen_interval(
        railcars,
        low,
        high,
        quality,
        vehicles=vehicles,
        ambiguous=unclear_m / site.vehicles.mean_length_m,
        history=background is not None,
    )
    by_type = {t: sum(1 for v in counted if v.type == t) for t in VEHICLE_TYPES}
    logger.debug("%d vehicles (%d counted), status %s", len(vehicles), railcars, quality.status)
    return SceneAnalysis(tuple(vehicles), quality, railcars, low, high, by_type, unobserved)


# --------------------------------------------------------------------------- background


def learn_background(
    scenes: Sequence[tuple[np.ndarray, tuple[str, ...], np.ndarray]],
    grid: SiteGrid,
    tracks: Sequence[Track],
    *,
    offsets: Sequence[tuple[float, float]] | None = None,
) -> Background | None:
    """Learn the empty-track appearance per track and station over an aligned stack.

    Parameters
    ----------
    scenes : sequence of (data, bands, valid)
        Acquisitions on ``grid``.
    grid : SiteGrid
    tracks : sequence of Track
    offsets : sequence of (float, float), optional
        Per scene, the (east, north) metres by which its content must move to align with
        the site: the tracks are moved by the opposite into each scene instead of
        resampling the scene. None: the scenes are already aligned.

    Returns
    -------
    Background or None
        None with fewer than three usable scenes (then each scene is judged on its own).

    Notes
    -----
    Each scene is first judged on its own (:func:`station_evidence` without background);
    the normalised profiles of the stations it shows clearly empty are collected, and the
    per-station model is their median. Normalised profiles do not depend on brightness
    or contrast, so summer and winter dates can be pooled. The work is
    :func:`background_sample` per scene (independent, run in parallel by the pipeline)
    and :func:`combine_background`.
    """
    if len(scenes) < 3 or not tracks:
        return None
    samples = [
        background_sample(
            data, bands, valid, grid, tracks, offsets[k] if offsets is not None else (0.0, 0.0)
        )
        for k, (data, bands, valid) in enumerate(scenes)
    ]
    return combine_background(samples, tracks)


@dataclass(frozen=True, slots=True)
class BackgroundSample:
    """What one scene contributes to the :class:`Background` (per track id).

    Attributes
    ----------
    shapes : dict
        (k, n) normalised across-track profiles where the station looked clearly empty,
        NaN elsewhere.
    busy : dict
        (n,) 1 where the station looked occupied, 0 where not, NaN where unobserved.
    texture : dict
        (n,) across-track texture where observed and free of snow, NaN elsewhere.
    step_m : float
        Station spacing.
    empty_ratio : dict
        Per band name, the scene's empty-to-ground log ratio (:func:`_empty_ratio`);
        empty on snow.
    foreign : dict
        (2, n) whether the shoulder on the left (+) and right (-) side is off its track's
        usual colour (:func:`_foreign_sides`), NaN where unobserved.
    chroma : dict
        (4, n) body colour per station (:func:`_body_chroma`).
    bed_ratio : dict
        (n,) :func:`_bed_ratio` where the station looked clearly empty, NaN elsewhere;
        no entry on snow.
    """

    shapes: dict[str, np.ndarray]
    busy: dict[str, np.ndarray]
    texture: dict[str, np.ndarray]
    step_m: float
    empty_ratio: dict[str, float] = field(default_factory=dict)
    foreign: dict[str, np.ndarray] = field(default_factory=dict)
    chroma: dict[str, np.ndarray] = field(default_factory=dict)
    bed_ratio: dict[str, np.ndarray] = field(default_factory=dict)


def _foreign_sides(obs: TrackObservation) -> np.ndarray:
    """(2, n) 1 where the shoulder on the left (+) / right (-) is off its usual colour.

    Per side, the shoulder (:data:`SHOULDER_M`) colour per band is compared with its
    median along the track in units of its robust spread; a station is foreign on a side
    more than :data:`Z_THRESHOLD` away (RMS over bands). The ground beside a track is the
    same along it; a building beside it (its roof, wall or shadow leaning into the strip)
    is not. NaN where unobserved.
    """
    offs = obs.frame.offsets_m
    v = obs.values
    far = np.zeros((2, v.shape[2]), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, side in enumerate((1.0, -1.0)):
            m = (side * offs >= SHOULDER_M[0]) & (side * offs <= SHOULDER_M[1])
            sh = np.nanmean(v[:, m], axis=1)  # (bands, n)
            ok = np.isfinite(sh).all(axis=0) & obs.observed
            if ok.sum() < 3:
                continue
            med = np.median(sh[:, ok], axis=1, keepdims=True)
            mad = 1.4826 * np.median(np.abs(sh[:, ok] - med), axis=1, keepdims=True)
            d = np.sqrt(np.mean(((sh - med) / np.maximum(mad, 1e-4)) ** 2, axis=0))
            far[k] = ok & (d > Z_THRESHOLD)
    return np.where(obs.observed[None], far.astype(np.float32), np.nan)


def _structure_side(foreign: np.ndarray, gap: int) -> np.ndarray:
    """(n,) +1 / -1 / 0: the side a building stands on (see :attr:`Background.structure_side`).

    ``foreign`` is (S, 2, n) per-side foreign flags (:func:`_foreign_sides`) per date;
    gaps shorter than ``gap`` stations are closed (a building is continuous). Stations
    with a building on both sides get 0 (which one covers the bed is not known).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        seen = np.isfinite(foreign).sum(axis=0)  # (2, n)
        share = np.nansum(foreign, axis=0) / np.maximum(seen, 1)
    core = (seen >= MIN_STATIC_DATES) & (share >= STATIC_SHARE)
    # It ends where its shoulder is foreign on fewer than STRUCTURE_END_SHARE of the
    # dates (on snowy or hazy dates a roof may not stand out from the ground).
    grown = (seen >= MIN_STATIC_DATES) & (share >= STRUCTURE_END_SHARE)
    near = []
    for c, g in zip(core, grown, strict=True):
        c = ndi.binary_closing(c, np.ones(max(1, gap), bool)) | c
        lab, _ = ndi.label(g | c)
        near.append(np.isin(lab, np.unique(lab[c & (lab > 0)])))
    near = np.stack(near)
    return np.where(near[0] & ~near[1], 1.0, np.where(near[1] & ~near[0], -1.0, 0.0))


def _converging(tracks: Sequence[Track], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Stations near another track, per track id in ``sizes``: (n,) bool.

    True at stations (spaced as :func:`railwatch.tracks.track_frame` spaces them) with
    another track's centre line closer than a body's half width beyond the shoulder
    (:data:`SHOULDER_M`, :data:`BODY_HALF_WIDTH_M`): a railcar there covers the shoulder.
    """
    import shapely

    reach = SHOULDER_M[1] + BODY_HALF_WIDTH_M
    lines = {t.track_id: t.line for t in tracks}
    out = {}
    for tid, n in sizes.items():
        line = lines[tid]
        s = (np.arange(n) + 0.5) * (line.length / n)
        pts = shapely.points(shapely.get_coordinates(shapely.line_interpolate_point(line, s)))
        near = np.zeros(n, bool)
        for other, ln in lines.items():
            if other != tid and ln.distance(line) < reach:
                near |= shapely.dwithin(pts, ln, reach)
        out[tid] = near
    return out


def _structure_lean(
    background: Background | None,
    obs: TrackObservation,
    ev: StationEvidence,
    static: np.ndarray | None,
) -> np.ndarray | None:
    """Add to ``static`` the stations a building beside the track covers itself on this date.

    A building beside the track (:attr:`Background.structure_side`) covers the bed in two
    ways that change from date to date: in an off-nadir view its wall leans over the
    bed, and with the sun on its side its shadow falls over bed and shoulder alike.
    Either way one surface runs from the structure's side over the bed: the half of the
    bed on that side has the colour of the shoulder beside it (RGB shares within
    :data:`STRUCTURE_CHROMA_TOL`, log brightness within :data:`STRUCTURE_BRIGHT_TOL`,
    :func:`_same_colour`), along the whole building. On a date where at least
    :data:`STRUCTURE_LEAN_SHARE` of the occupied-looking stations beside one building
    do so, those stations (gaps shorter than :data:`STRUCTURE_GAP_M` closed: no railcar
    fits there) are not observable. A railcar's paint ends at its side: a rake standing
    at the building keeps the date's share low and is counted.
    """
    side = None if background is None else background.structure_side.get(obs.track.track_id)
    n = ev.z.shape[0]
    idx = [obs.bands.index(b) for b in ("red", "green", "blue") if b in obs.bands]
    if side is None or side.shape[0] != n or len(idx) < 3 or not np.any(side):
        return static
    offs = obs.frame.offsets_m
    step = obs.frame.step_m
    v = _smooth_along(np.nan_to_num(obs.values[idx], nan=0.0), int(round(0.75 / step)))
    # The half of the bed on the building's side (a lean reaching past the centre line
    # covers it whole; one that does not leaves a rail free, see station_evidence).
    half = [(sign * offs >= 0.2) & (sign * offs <= BODY_HALF_WIDTH_M) for sign in (1.0, -1.0)]
    shoulder = [
        v[:, (sign * offs >= SHOULDER_M[0]) & (sign * offs <= SHOULDER_M[1])].mean(axis=1)
        for sign in (1.0, -1.0)
    ]
    body = np.where(side[None] > 0, v[:, half[0]].mean(axis=1), v[:, half[1]].mean(axis=1))
    beside = np.where(side[None] > 0, shoulder[0], shoulder[1])
    tb, ts = body.sum(axis=0), beside.sum(axis=0)
    ok = (tb > 0) & (ts > 0)
    tb, ts = np.where(ok, tb, 1.0), np.where(ok, ts, 1.0)
    ref = np.vstack([beside / ts, np.log(ts)[None]])
    same = ok & _same_colour(np.vstack([body / tb, np.log(tb)[None]]), ref)
    busy = ev.observed & (ev.z > Z_THRESHOLD) & (side != 0) & ok
    gap = max(1, int(round(STRUCTURE_GAP_M / step)))
    # The surface continuing the shoulder, in pieces no railcar fits between.
    occupied = ev.observed & (ev.z > Z_THRESHOLD)
    cont = occupied & same
    pieces, _ = ndi.label(ndi.binary_closing(cont, np.ones(gap, bool)) | cont)
    cover = np.zeros(n, bool)
    # A building's lean reaches no further along the track than a gap beyond its ends.
    reach = ndi.binary_dilation(side != 0, np.ones(2 * gap + 1, bool))
    for a, b in _runs(side != 0):
        if busy[a:b].any() and same[a:b][busy[a:b]].mean() >= STRUCTURE_LEAN_SHARE:
            # The building's own surface reaches as far as it continues unbroken.
            hit = np.unique(pieces[a:b][busy[a:b] & same[a:b]])
            cover |= np.isin(pieces, hit[hit > 0]) & reach
    # ... and ends where the look of occupied track does: a stretch of bodies running on
    # past it by more than a gap no railcar fits in is a rake standing at the building
    # (dark cars, their shadows towards it, continue its shoulder too).
    cover &= ~_rake_past(occupied, cover, gap)
    if not cover.any():
        return static
    return cover if static is None or static.shape != cover.shape else static | cover


def _body_chroma(obs: TrackObservation, ev: StationEvidence) -> np.ndarray:
    """(4, n) body colour where the station looks occupied, NaN elsewhere.

    RGB shares, and the log of the body brightness over the track's median that date
    (illumination cancels in both).
    """
    idx = [obs.bands.index(b) for b in ("red", "green", "blue") if b in obs.bands]
    n = ev.z.shape[0]
    if len(idx) < 3 or not ev.observed.any():
        return np.full((4, n), np.nan, dtype=np.float32)
    c = ev.colour[idx]
    tot = c.sum(axis=0)
    ref = float(np.median(tot[ev.observed]))
    busy = ev.observed & (ev.z > Z_THRESHOLD) & (tot > 0) & (ref > 0)
    safe = np.where(busy, tot, 1.0)
    out = np.vstack([c / safe, np.log(safe / max(ref, 1e-6))[None]])
    return np.where(busy[None], out, np.nan).astype(np.float32)


def _same_colour(chroma: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Where a body colour (:func:`_body_chroma`) matches ``colour``; NaN compare False."""
    shares = np.sqrt(np.sum((chroma[..., :3, :] - colour[..., :3, :]) ** 2, axis=-2))
    bright = np.abs(chroma[..., 3, :] - colour[..., 3, :])
    return (shares <= STRUCTURE_CHROMA_TOL) & (bright <= STRUCTURE_BRIGHT_TOL)


def _structure_beside(foreign: np.ndarray, chroma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stations beside a static structure that leans over them on some dates.

    Parameters
    ----------
    foreign : (S, n) shoulder-foreign flags per date (NaN unobserved).
    chroma : (S, 4, n) body colour on occupied dates (:func:`_body_chroma`), NaN otherwise.

    Notes
    -----
    A building is beside the track on every date: its shoulder is foreign on at least
    :data:`STATIC_SHARE` of at least :data:`MIN_STATIC_DATES` dates. Its roof and wall
    lean over the track by height x tan(view angle), differently per date, so the
    station looks occupied only on some dates, but always in the structure's colour:
    at least :data:`STRUCTURE_MIN_BUSY` occupied dates of which :data:`STATIC_SHARE`
    share its median colour (:func:`_same_colour`). Railcars standing
    there on many dates differ in paint from date to date.

    Returns
    -------
    near : (n,) bool
    colour : (4, n) median colour of the occupied dates.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        seen = np.isfinite(foreign).sum(axis=0)
        fshare = np.nansum(foreign, axis=0) / np.maximum(seen, 1)
        med = np.nanmedian(chroma, axis=0)  # (4, n)
        n_busy = np.isfinite(chroma[:, 0]).sum(axis=0)
        same = _same_colour(chroma, med[None]).sum(axis=0) / np.maximum(n_busy, 1)
    near = (
        (seen >= MIN_STATIC_DATES)
        & (fshare >= STATIC_SHARE)
        & (n_busy >= STRUCTURE_MIN_BUSY)
        & (same >= STATIC_SHARE)
    )
    return near, med


def background_sample(
    data: np.ndarray,
    bands: tuple[str, ...],
    valid: np.ndarray,
    grid: SiteGrid,
    tracks: Sequence[Track],
    offset: tuple[float, float] = (0.0, 0.0),
) -> BackgroundSample | None:
    """One scene's contribution to the empty-track model (None if it shows no track).

    Parameters
    ----------
    data, bands, valid
        The scene on ``grid``.
    grid : SiteGrid
    tracks : sequence of Track
    offset : (float, float)
        (east, north) metres by which the scene's content must move to align with the
        site (see :func:`learn_background`).

    Returns
    -------
    BackgroundSample or None
        None when the scene is obscured or does not cover the tracks.
    """
    from shapely.affinity import translate
    from shapely.geometry import box

    dx, dy = offset
    moved = [Track(t.track_id, translate(t.line, -dx, -dy)) for t in tracks]
    obs = observe_tracks(data, bands, valid, grid, moved, box(*grid.bounds))
    if not obs:
        return None
    q = quality_from_observations(obs, QualityConfig())
    if q.status in ("obscured", "no_coverage"):
        return None
    shapes, busy, texture, foreign, chroma, bed = {}, {}, {}, {}, {}, {}
    evidence = station_evidence(obs)
    for o, ev in zip(obs, evidence, strict=True):
        tid = o.track.track_id
        empty = ev.observed & (ev.z < 0.5 * Z_THRESHOLD)
        shapes[tid] = np.where(empty[None], ev.shape, np.nan).astype(np.float32)
        busy[tid] = np.where(ev.observed, (ev.z > Z_THRESHOLD).astype(np.float32), np.nan)
        texture[tid] = np.where(o.observed & ~o.snow, o.texture, np.nan)
        foreign[tid] = _foreign_sides(o)
        chroma[tid] = _body_chroma(o, ev)
        if ev.bed_ratio is not None:
            bed[tid] = np.where(empty, ev.bed_ratio, np.nan).astype(np.float32)
    r, names = evidence[0].empty_ratio, obs[0].bands
    ratio = {}
    if r is not None and len(r) == len(names):
        ratio = {b: float(x) for b, x in zip(names, r, strict=True)}
    return BackgroundSample(
        shapes,
        busy,
        texture,
        float(obs[0].frame.step_m),
        ratio,
        foreign,
        chroma,
        bed_ratio=bed,
    )


def combine_background(
    samples: Sequence[BackgroundSample | None], tracks: Sequence[Track]
) -> Background | None:
    """The per-station empty-track model from the scenes' samples (median over dates).

    Returns None with fewer than three usable samples.
    """
    got = [s for s in samples if s is not None]
    if len(got) < 3 or not tracks:
        return None
    shapes, support, texture, static, structure, sides, bed = {}, {}, {}, {}, {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for t in tracks:
            tid = t.track_id
            stack_list = [s.shapes[tid] for s in got if tid in s.shapes]
            if not stack_list:
                continue
            st = np.stack(stack_list)  # (S, k, n)
            sup = np.isfinite(st[:, 0, :]).sum(axis=0)
            med = np.nanmedian(st, axis=0)
            shapes[tid] = _unit(np.nan_to_num(med, nan=0.0)) * np.where(sup > 0, 1.0, np.nan)
            support[tid] = sup
            texture[tid] = np.nanmedian(
                np.stack([s.texture[tid] for s in got if tid in s.texture]), axis=0
            )
            b = np.stack([s.busy[tid] for s in got if tid in s.busy])
            seen_n = np.isfinite(b).sum(axis=0)
            share = np.nansum(b, axis=0) / np.maximum(seen_n, 1)
            static[tid] = (seen_n >= MIN_STATIC_DATES) & (share >= STATIC_SHARE)
            beds = [s.bed_ratio[tid] for s in got if tid in s.bed_ratio]
            if len(beds) >= 3:
                bs = np.stack(beds)
                # A station's own empty bed, where at least two dates showed it empty.
                known = np.isfinite(bs).sum(axis=0) >= 2
                bed[tid] = np.where(known, np.nanmedian(bs, axis=0), np.nan)
            # Either shoulder off its colour (sides: _structure_side below).
            fs = [(np.fmax(*s.foreign[tid]), s.chroma[tid]) for s in got if tid in s.foreign]
            if len(fs) >= MIN_STATIC_DATES:
                f, c = (np.stack(x) for x in zip(*fs, strict=True))
                near, colour = _structure_beside(f, c)
                gap = max(1, int(round(STRUCTURE_GAP_M / got[-1].step_m)))
                near = ndi.binary_closing(near, np.ones(gap, bool))
                if near.any():
                    # Closed gaps take the colour of the structure station before them.
                    idx = np.where(np.isfinite(colour[0]) & near, np.arange(near.size), 0)
                    idx = np.maximum.accumulate(idx)
                    structure[tid] = np.where(near[None], colour[:, idx], np.nan)
            fsd = [s.foreign[tid] for s in got if tid in s.foreign]
            if len(fsd) >= MIN_STATIC_DATES:
                side = _structure_side(np.stack(fsd), int(round(STRUCTURE_GAP_M / got[-1].step_m)))
                if side.any():
                    sides[tid] = side
    if sides:
        # Where another track runs within reach of the shoulder (a turnout), what leans
        # over it is that track's railcars, not a building.
        near = _converging(tracks, {tid: v.shape[0] for tid, v in sides.items()})
        sides = {tid: np.where(near[tid], 0.0, v) for tid, v in sides.items()}
        sides = {tid: v for tid, v in sides.items() if v.any()}
    ratios = [s.empty_ratio for s in got]
    names = {b for r in ratios for b in r}
    # Median over the dates: a busy date may take a fleet of cars for empty track.
    ratio = {
        b: float(np.median(v))
        for b in sorted(names)
        if len(v := [r[b] for r in ratios if b in r]) >= 3
    }
    return Background(
        shapes,
        support,
        texture,
        len(got),
        got[-1].step_m,
        static,
        ratio,
        structure,
        sides,
        bed_ratio=bed,
    )
