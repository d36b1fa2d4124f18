"""Tags in XMP sidecars (`FILE.EXT.xmp`), merged into what the user's tools wrote there.

The tags go where digiKam, darktable, Lightroom and Immich read keywords, in their order
of preference: `digiKam:TagsList` (an rdf:Seq, `/` between levels), `lr:hierarchicalSubject`
(an rdf:Bag, `|` between levels) and `dc:subject` (an rdf:Bag, always the bare tag). With
a hierarchy (`--xmp-prefix dtindex/wd3`) the first two hold `dtindex/wd3/1girl` and
`dtindex|wd3|1girl`. The rating is filed under a `rating` level (`rating/general`,
`rating|general`, and `rating:general` in dc:subject), so a photo manager does not take
`general` for what the picture shows.

Only dtindex's own keywords are ever removed. For each field, a property in dtindex's
namespace (`dtindex:writtenTagsList`, ...) lists the keywords each model put there, as
`MODEL<TAB>KEYWORD`; an export of a model removes its keywords that no longer pass,
unless another model also put them there, and adds the missing ones. A keyword that was
already there when dtindex first wanted it is the user's, and stays the user's. A keyword
dtindex put into a field that the user took out of it (a wrong tag removed in digiKam,
or with exiftool) is listed in that field's `dtindex:takenOut...` and stays out of that
field, whichever model gives it, until the user puts it back, which makes it the user's.
Only that field: which fields a tool edits is the user's choice, and a keyword put back
into one field could not be told from one taken out of the others. Nothing else in the
sidecar changes, and a sidecar already holding what the export would write is not
written at all.

A sidecar dtindex creates is marked so (`dtindex:created`), and removed again once it
would hold nothing else: no keyword of any model's, and nothing another program wrote
into it since. A sidecar that was there first is never removed, even an empty one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from indexer.errors import UsageError
from indexer.export.thresholds import Scored, named
from indexer.export.writing import REMOVE, Outcome, Removal, update_file
from indexer.export.xmp_packet import EMPTY, Packet, forbidden

SUFFIX = b".xmp"
DTINDEX = "https://dtindex.invalid/xmp/1.0/"  # private: the keywords dtindex wrote
RECORDS = ("dtindex", "Bag")
CREATED = "created"  # dtindex's property in a sidecar it created: one item, `MADE`
MADE = "dtindex"


@dataclass(frozen=True)
class Field:
    namespace: str
    prefix: str
    name: str
    container: str  # Bag or Seq
    separator: str | None  # between hierarchy levels; None: flat
    record: str  # dtindex's property listing what each model wrote here
    taken: str  # dtindex's, listing the keywords the user took out of the field


FIELDS = (
    Field(
        "http://www.digikam.org/ns/1.0/",
        "digiKam",
        "TagsList",
        "Seq",
        "/",
        "writtenTagsList",
        "takenOutTagsList",
    ),
    Field(
        "http://ns.adobe.com/lightroom/1.0/",
        "lr",
        "hierarchicalSubject",
        "Bag",
        "|",
        "writtenHierarchicalSubject",
        "takenOutHierarchicalSubject",
    ),
    Field(
        "http://purl.org/dc/elements/1.1/",
        "dc",
        "subject",
        "Bag",
        None,
        "writtenSubject",
        "takenOutSubject",
    ),
)


def hierarchy(prefix: str | None) -> tuple[str, ...]:
    """`--xmp-prefix a/b` as levels ("a", "b"); `|` is refused, since Lightroom's field
    would read it as one more level, and so is a character XML cannot hold."""
    if not prefix:
        return ()
    levels = tuple(prefix.strip("/").split("/"))
    if any(not level.strip() or "|" in level or forbidden(level) for level in levels):
        raise UsageError(
            f"--xmp-prefix {prefix!r} must be names joined by '/', without '|' or a "
            "control character"
        )
    return levels


def keywords(field: Field, tags: Sequence[Scored], levels: tuple[str, ...]) -> list[str]:
    """What `field` holds for `tags`, by descending score, each once."""
    ordered = [named(t) for t in sorted(tags, key=lambda t: -t.score)]
    if field.separator is None:
        return list(dict.fromkeys(":".join(names) for names in ordered))
    return list(dict.fromkeys(field.separator.join((*levels, *names)) for names in ordered))


def merge_sidecar(
    target: bytes, model: str, tags: Sequence[Scored], levels: tuple[str, ...] = ()
) -> Outcome:
    """Bring `model`'s keywords in the sidecar `target` up to `tags`; what became of it.

    No sidecar and no tags: nothing is created; a sidecar dtindex created that is left
    with nothing else in it is removed. The merge is made again where another
    program saves the sidecar meanwhile (`writing.update_file`). Raises SidecarError (the
    file is left as it is) where the sidecar is not XMP this can merge into, OSError where
    it cannot be read or written.
    """
    return update_file(target, lambda data: merged(data, model, tags, levels))


def merged(
    data: bytes | None, model: str, tags: Sequence[Scored], levels: tuple[str, ...]
) -> bytes | Removal | None:
    """The sidecar `data` (None: none yet) with `model`'s keywords brought up to `tags`;
    None where nothing changes, REMOVE where a sidecar dtindex created would hold
    nothing else."""
    if data is None and not tags:
        return None
    packet = Packet(EMPTY if data is None else data)
    plans = [_plan(packet, field, model, keywords(field, tags, levels)) for field in FIELDS]
    for field, plan in zip(FIELDS, plans, strict=True):
        kind = (field.prefix, field.container)
        packet.edit(field.namespace, field.name, kind, plan.remove, plan.add)
    for field, plan in zip(FIELDS, plans, strict=True):  # after the fields, for the reader
        packet.edit(DTINDEX, field.record, RECORDS, plan.unclaimed, plan.claimed)
        packet.edit(DTINDEX, field.taken, RECORDS, plan.back, plan.out)
    if data is None:
        packet.edit(DTINDEX, CREATED, RECORDS, add=[MADE])
    elif not tags and _only_bookkeeping(packet):
        return REMOVE
    return packet.to_bytes() if any(any(plan) for plan in plans) else None


def _only_bookkeeping(packet: Packet) -> bool:
    """Whether `packet` is a sidecar dtindex created that holds nothing but its mark."""
    if MADE not in (packet.items(DTINDEX, CREATED) or ()):
        return False
    unmarked = Packet(packet.to_bytes())  # `packet` itself stays as it is
    unmarked.edit(DTINDEX, CREATED, RECORDS, remove={MADE})
    return unmarked.is_empty()


class KeywordChanges(NamedTuple):
    remove: set[str]  # keywords
    add: list[str]
    unclaimed: set[str]  # records, of any model
    claimed: list[str]  # records of the model
    back: set[str]  # keywords the user put back: no longer taken out
    out: list[str]  # keywords the user took out since


def _plan(packet: Packet, field: Field, model: str, wanted: list[str]) -> KeywordChanges:
    """The keywords to remove from and add to `field`, the records to drop and add, and
    the keywords the user took out of it: `model`'s keywords that no longer pass go
    unless another model also wrote them; a keyword the user had before dtindex wanted it
    is never claimed; one a record says dtindex wrote and the field no longer holds was
    taken out by the user (dtindex drops a keyword's record with it): it stays out, every
    model's record of it dropped, until the user puts it back."""
    present = set(packet.items(field.namespace, field.name) or ())
    mine: set[str] = set()
    theirs: set[str] = set()
    gone: set[str] = set()  # records of keywords the user took out since
    for record in packet.items(DTINDEX, field.record) or ():
        owner, tab, keyword = record.partition("\t")
        if tab and keyword not in present:
            gone.add(record)
        elif tab:
            (mine if owner == model else theirs).add(keyword)
    taken = set(packet.items(DTINDEX, field.taken) or ())
    out = sorted({record.partition("\t")[2] for record in gone} - taken)
    back = taken & present
    still_out = (taken - back) | set(out)
    wanted = [k for k in wanted if k not in still_out]
    remove = (mine - set(wanted) - theirs) & present
    add = [k for k in wanted if k not in present]
    claimed = [k for k in wanted if k not in present or k in mine or k in theirs]
    unclaimed = {f"{model}\t{k}" for k in mine - set(claimed)} | gone
    newly = [f"{model}\t{k}" for k in claimed if k not in mine]
    return KeywordChanges(remove, add, unclaimed, newly, back, out)
