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
dtindex put there that the user took out (a wrong tag removed in digiKam or with
exiftool) stays out while the model gives it: its record is kept to say so, and it
leaves the other fields too, where it is dtindex's, as a photo manager reading another
field would show it again. Once the model no longer gives it, the record goes, and a
later export may add it anew. Nothing else in the sidecar changes, and a sidecar already
holding what the export would write is not written at all.

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


FIELDS = (
    Field("http://www.digikam.org/ns/1.0/", "digiKam", "TagsList", "Seq", "/", "writtenTagsList"),
    Field(
        "http://ns.adobe.com/lightroom/1.0/",
        "lr",
        "hierarchicalSubject",
        "Bag",
        "|",
        "writtenHierarchicalSubject",
    ),
    Field("http://purl.org/dc/elements/1.1/", "dc", "subject", "Bag", None, "writtenSubject"),
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
    out = _taken_out(packet, tags, levels)
    given = [tag for tag in tags if named(tag) not in out]
    dropped = [tag for tag in tags if named(tag) in out]
    plans = [
        _plan(packet, f, model, keywords(f, given, levels), set(keywords(f, dropped, levels)))
        for f in FIELDS
    ]
    for field, plan in zip(FIELDS, plans, strict=True):
        kind = (field.prefix, field.container)
        packet.edit(field.namespace, field.name, kind, plan.remove, plan.add)
    for field, plan in zip(FIELDS, plans, strict=True):  # after the fields, for the reader
        packet.edit(DTINDEX, field.record, RECORDS, plan.unclaimed, plan.claimed)
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


def _taken_out(
    packet: Packet, tags: Sequence[Scored], levels: tuple[str, ...]
) -> set[tuple[str, ...]]:
    """The tags (as `named` gives them) whose keyword some model's record says dtindex
    put into a field, and which that field no longer holds: the user took them out."""
    out = set()
    for field in FIELDS:
        present = set(packet.items(field.namespace, field.name) or ())
        records = packet.items(DTINDEX, field.record) or ()
        written = {keyword for _, tab, keyword in map(_split, records) if tab}
        for tag in tags:
            (keyword,) = keywords(field, [tag], levels)
            if keyword in written and keyword not in present:
                out.add(named(tag))
    return out


def _split(record: str) -> tuple[str, str, str]:
    return record.partition("\t")


class KeywordChanges(NamedTuple):
    remove: set[str]  # keywords
    add: list[str]
    unclaimed: set[str]  # records of the model
    claimed: list[str]


def _plan(
    packet: Packet, field: Field, model: str, wanted: list[str], taken_out: set[str]
) -> KeywordChanges:
    """The keywords to remove from and add to `field`, and the records of `model` to
    drop and add: its keywords that no longer pass go unless another model also wrote
    them; a keyword the user had before dtindex wanted it is never claimed; one the user
    took out (`taken_out`, still given) goes where it is still `model`'s, its record kept."""
    present = set(packet.items(field.namespace, field.name) or ())
    mine: set[str] = set()
    theirs: set[str] = set()
    for record in packet.items(DTINDEX, field.record) or ():
        owner, tab, keyword = _split(record)
        if tab:
            (mine if owner == model else theirs).add(keyword)
    remove = (mine - set(wanted) - theirs) & present
    add = [k for k in wanted if k not in present]
    claimed = [k for k in wanted if k not in present or k in mine or k in theirs]
    unclaimed = {f"{model}\t{k}" for k in mine - set(claimed) - taken_out}
    newly = [f"{model}\t{k}" for k in claimed if k not in mine]
    return KeywordChanges(remove, add, unclaimed, newly)
