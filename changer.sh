# The changer: load the cartridge asked for by its label (a restore) or
# else the next one (a backup continuing on a blank); log every request.
echo "volume $TAPESTREAM_VOLUME of set $TAPESTREAM_SET_ID: ${TAPESTREAM_VOLUME_LABEL:-any}" >> changer.log
if [ -n "$TAPESTREAM_VOLUME_LABEL" ]; then tapestream tape load --tape tape:library "$TAPESTREAM_VOLUME_LABEL" 2>/dev/null || true; fi
