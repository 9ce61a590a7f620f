"""One child blueprint per console section; ``points_service.console.SECTIONS`` lists them."""
