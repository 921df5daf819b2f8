from __future__ import annotations


def test_spatial_mapping_with_several_factors_follows_the_array():
    from codesign.hardware.overrides import scale_spatial_mapping

    mapping = [
        {"name": "Conv", "spatial_mapping": {"D1": ["K, 14"], "D2": ["FY, 3", "C, 4"], "D3": ["OX, 2"]}}
    ]
    grown = scale_spatial_mapping(mapping, ["D1", "D2", "D3"], [14, 12, 2], [14, 24, 2])
    assert grown[0]["spatial_mapping"]["D2"] == ["FY, 3", "C, 8"] and grown[0]["spatial_mapping"]["D1"] == [
        "K, 14"
    ]
    shrunk = scale_spatial_mapping(mapping, ["D1", "D2", "D3"], [14, 12, 2], [7, 6, 2])
    assert shrunk[0]["spatial_mapping"]["D1"] == ["K, 7"] and shrunk[0]["spatial_mapping"]["D2"] == [
        "FY, 3",
        "C, 2",
    ]
    assert mapping[0]["spatial_mapping"]["D2"] == ["FY, 3", "C, 4"]  # the input is not modified
