"""Identifier splitting for the FTS5 lexical index."""

from indexer.chunking import lexical


def test_split_camel_snake_and_acronyms() -> None:
    assert lexical.split_identifier("getUserName") == ["get", "user", "name"]
    assert lexical.split_identifier("get_user_name") == ["get", "user", "name"]
    assert lexical.split_identifier("HTTPServer2") == ["http", "server", "2"]
    assert lexical.split_identifier("__init__") == ["init"]


def test_terms_keep_whole_identifier_and_parts() -> None:
    assert lexical.terms("def getUserName(x):") == [
        "def",
        "getusername",
        "get",
        "user",
        "name",
        "x",
    ]


def test_long_and_repeated_identifiers_split_the_same_way() -> None:
    # Short words are cached, long ones (minified or generated code) are not: same answers.
    long = "parse" + "Http" * 20 + "Date"
    want = ["parse", *["http"] * 20, "date"]
    for _ in range(2):
        assert lexical.split_identifier(long) == want
        assert lexical.terms(f"{long} getUserName") == [long.lower(), *want, "getusername", "get", "user", "name"]
        assert lexical.embed_text(f"{long}(getUserName)") == " ".join(want) + "(get user name)"
    parts = lexical.split_identifier("getUserName")
    parts.append("mutated")  # a caller's list is its own: the cache is not touched
    assert lexical.split_identifier("getUserName") == ["get", "user", "name"]


def test_camel_and_snake_meet_on_the_same_terms() -> None:
    a = set(lexical.terms("getUserName"))
    b = set(lexical.terms("get_user_name"))
    assert {"get", "user", "name"} <= a & b


def test_match_expression_drops_stopwords_and_quotes_terms() -> None:
    assert lexical.match_expression("how to get the user name") == '"get" OR "user" OR "name"'
    assert lexical.match_expression("the of a") is None
    # FTS5 syntax in a query stays literal
    assert lexical.match_expression('NEAR(foo bar) OR "x') == '"near" OR "foo" OR "bar"'


def test_embed_text_writes_identifiers_as_words_and_keeps_the_rest() -> None:
    from indexer.chunking.lexical import embed_text

    assert embed_text("def parseHttpDate(raw_value): return x") == "def parse http date(raw value): return x"
    assert embed_text("HTTPServer.serve_forever()") == "http server.serve forever()"


def test_query_words_drop_stopwords_and_repeats() -> None:
    from indexer.chunking.lexical import query_words

    assert query_words("Return the user name of the getUserName user") == [
        "user", "name", "getusername", "get"]


def test_short_names_of_code_are_written_out_after_their_identifier() -> None:
    embed_text, terms = lexical.embed_text, lexical.terms
    assert embed_text("fn put_u16_le(n: u16)") == \
        "fn put u 16 le unsigned 16 bit integer little endian(n: u 16 unsigned 16 bit integer)"
    assert embed_text("as_f64 i128 usize") == (
        "as f 64 64 bit float double precision i 128 signed 128 bit integer usize unsigned pointer sized integer")
    assert embed_text("readBuf(ctx)") == "read buf buffer(ctx context)"
    assert embed_text("parseHttpDate user16") == "parse http date user 16"  # nothing to write out
    # The lexical index reads the same text, so "unsigned 16 bit" meets `put_u16` there too.
    assert {"unsigned", "16", "bit"} <= set(terms(embed_text("put_u16")))
