"""A few poems in the layout of the npm package chinese-poetry (poet.tang.N.json),
with the editors' apparatus the reader must clean out."""
import json

POEMS = [
    ("靜夜思", "李白", ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]),
    ("春曉", "孟浩然", ["春眠不覺曉，處處聞啼鳥。", "夜來風雨聲，花落知多少。"]),
    ("登鸛雀樓", "王之渙", ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]),
    ("江雪", "柳宗元", ["千山鳥飛絕，萬徑人蹤滅。", "孤舟蓑笠翁，獨釣寒江雪。"]),
    ("相思", "王維", ["紅豆生南國，春來發幾枝。", "願君多采擷，此物最相思。"]),
    ("鹿柴", "王維", ["空山不見人，但聞人語響。", "返景入深林，復照青苔上。"]),
    ("四時", "佚名", ["春水滿四澤，夏雲多奇峰。", "秋月揚明輝，冬嶺秀孤松。"]),
    ("早發白帝城", "李白", ["朝辭白帝彩雲間，千里江陵一日還。", "兩岸猿聲啼不住，輕舟已過萬重山。"]),
    ("送孟浩然之廣陵", "李白", ["故人西辭黃鶴樓，煙花三月下揚州。", "孤帆遠影碧空盡，唯見長江天際流。"]),
    ("宿建德江", "孟浩然", ["移舟泊煙渚，日暮客愁新。", "野曠天低樹，江清月近人。"]),
    ("尋隱者不遇", "賈島", ["松下問童子，言師採藥去。", "只在此山中，雲深不知處。"]),
    ("登樂遊原", "李商隱", ["向晚意不適，驅車登古原。", "夕陽無限好，只是近黃昏。"]),
]

NOISY = [
    # a variant-reading note and a restored character: kept, cleaned
    {"author": "太宗皇帝", "title": "帝京篇", "paragraphs": ["秦川雄帝宅（一作「宮」），函谷壯皇居。",
                                                           "[綺]殿千尋起，離宮百雉餘。"]},
    # a lost character: left out
    {"author": "某", "title": "殘篇", "paragraphs": ["□願紫宸居，永欣丹扆御。"]},
    # the same text again under another author: left out
    {"author": "又某", "title": "靜夜思", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
    # a note spanning paragraphs, leaving a lone '。' behind
    {"author": "某乙", "title": "補遺", "paragraphs": ["青山橫北郭，白水遶東城。", "（〖1〗按此詩見《全唐詩》。",
                                                      "）。"]},
]


def write_poetry_folder(folder):
    """poet.tang.0.json (the clean poems) and poet.tang.1000.json (the noisy
    records) in folder; returns folder."""
    folder.mkdir(parents=True, exist_ok=True)
    recs = [{"author": a, "title": t, "paragraphs": p, "id": str(i)} for i, (t, a, p) in enumerate(POEMS)]
    (folder / "poet.tang.0.json").write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    (folder / "poet.tang.1000.json").write_text(json.dumps(NOISY, ensure_ascii=False), encoding="utf-8")
    (folder / "authors.tang.json").write_text("[]", encoding="utf-8")     # not a poem file
    return folder
